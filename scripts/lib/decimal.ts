/** A number as the shortest decimal string that reads back as it, never in exponent form. */
export function decimal(n: number): string {
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a price: ${n}`);
  const s = String(n);
  if (!s.includes("e")) return s;
  const [mantissa = "", exp = "0"] = s.split("e");
  const [whole = "", frac = ""] = mantissa.split(".");
  const digits = whole + frac;
  const point = whole.length + Number(exp);
  if (point <= 0) return `0.${"0".repeat(-point)}${digits}`.replace(/0+$/, "");
  return digits.padEnd(point, "0");
}
