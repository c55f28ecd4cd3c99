ALTER TABLE `spend_keys` ADD `run_spend_limit_nanos` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `run_request_limit` integer;--> statement-breakpoint
ALTER TABLE `requests` ADD `run_id` text;--> statement-breakpoint
CREATE INDEX `requests_wallet_run` ON `requests` (`wallet_id`,`run_id`,`created_at`) WHERE "requests"."run_id" IS NOT NULL;
