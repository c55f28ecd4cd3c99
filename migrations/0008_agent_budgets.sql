-- Budgets for agents: token limits and their counters, per-run budgets (run_id on ledger rows), child keys (a key's
-- parent, what it may delegate, what its children take of its cycle; the parent on ledger rows), and the replaced
-- secret of a rotation with a grace period (its hash, never the secret). ADD COLUMN and an index only, every column
-- nullable or defaulted, so the previous release keeps working on this schema.
ALTER TABLE `requests` ADD `parent_key_id` text;--> statement-breakpoint
ALTER TABLE `requests` ADD `run_id` text;--> statement-breakpoint
CREATE INDEX `requests_wallet_run` ON `requests` (`wallet_id`,`run_id`,`created_at`) WHERE "requests"."run_id" IS NOT NULL;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `token_limit_count` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `token_limit_cycle` text;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `tokens_per_minute` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `run_spend_limit_nanos` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `run_request_limit` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `parent_key_id` text;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `delegation_max_depth` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `delegation_max_children` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `previous_key_hash` text;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `previous_key_expires_at` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `carved_spend_nanos` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `current_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `total_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `token_period_start` integer;