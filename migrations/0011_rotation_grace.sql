-- A rotation may keep the replaced secret working for a grace period: its hash (never the secret) and when it stops.
ALTER TABLE `spend_keys` ADD `previous_key_hash` text;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `previous_key_expires_at` integer;
