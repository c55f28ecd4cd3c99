/**
 * A small real audio file for the transcription tests (workers and conformance alike): `seconds` of PCM WAV at
 * 8 kHz, 16-bit mono (16,000 bytes a second), silent or a tone of `hz`.
 */
export function wav(seconds: number, hz = 0): Uint8Array<ArrayBuffer> {
  const samples = 8_000 * seconds;
  const b = new Uint8Array(44 + samples * 2);
  const v = new DataView(b.buffer);
  const tag = (at: number, s: string) => {
    for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i));
  };
  tag(0, "RIFF");
  v.setUint32(4, 36 + samples * 2, true);
  tag(8, "WAVE");
  tag(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, 8_000, true);
  v.setUint32(28, 16_000, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  tag(36, "data");
  v.setUint32(40, samples * 2, true);
  for (let i = 0; hz && i < samples; i++)
    v.setInt16(44 + i * 2, Math.round(8_000 * Math.sin((2 * Math.PI * hz * i) / 8_000)), true);
  return b;
}
