-- Token limits per spend key: tokens per cycle and per UTC minute, and the counters the KeyGuard's bookkeeping
-- writes. ADD COLUMN only, every one nullable or defaulted, so the previous release keeps working on this schema.
ALTER TABLE `spend_keys` ADD `token_limit_count` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `token_limit_cycle` text;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `tokens_per_minute` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `current_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `total_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `token_period_start` integer;
