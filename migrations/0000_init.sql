CREATE TABLE `model_overrides` (
	`model` text PRIMARY KEY NOT NULL,
	`provider` text NOT NULL,
	`input_price` integer NOT NULL,
	`output_price` integer NOT NULL,
	`cache_read_price` integer,
	`cache_write_price` integer,
	`max_output_tokens` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `requests` (
	`request_id` text NOT NULL,
	`spend_key_id` text NOT NULL,
	`wallet_id` text NOT NULL,
	`status` text NOT NULL,
	`provider` text NOT NULL,
	`model` text NOT NULL,
	`endpoint` text NOT NULL,
	`response_id` text,
	`http_status` integer,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`cache_read_tokens` integer NOT NULL,
	`cache_write_tokens` integer NOT NULL,
	`reasoning_tokens` integer NOT NULL,
	`input_cost_femtos` text NOT NULL,
	`output_cost_femtos` text NOT NULL,
	`cost_nanos` integer NOT NULL,
	`usage_known` integer NOT NULL,
	`stream` integer NOT NULL,
	`latency_ms` integer NOT NULL,
	`metadata` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `requests_request_id` ON `requests` (`request_id`);--> statement-breakpoint
CREATE INDEX `requests_wallet_created` ON `requests` (`wallet_id`,`created_at`,`request_id`);--> statement-breakpoint
CREATE INDEX `requests_key_created` ON `requests` (`spend_key_id`,`created_at`,`request_id`);--> statement-breakpoint
CREATE TABLE `spend_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`wallet_id` text NOT NULL,
	`name` text NOT NULL,
	`key_hash` text NOT NULL,
	`key_preview` text NOT NULL,
	`status` text NOT NULL,
	`request_shape` text NOT NULL,
	`allowed_models` text,
	`allowed_providers` text,
	`spend_limit_nanos` integer,
	`spend_limit_cycle` text,
	`request_limit_count` integer,
	`request_limit_cycle` text,
	`rate_limit_rpm` integer,
	`rate_limit_burst` integer,
	`expires_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`revoked_at` integer,
	`current_spend_nanos` integer DEFAULT 0 NOT NULL,
	`total_spend_nanos` integer DEFAULT 0 NOT NULL,
	`current_requests` integer DEFAULT 0 NOT NULL,
	`total_requests` integer DEFAULT 0 NOT NULL,
	`spend_period_start` integer,
	`request_period_start` integer,
	`last_used_at` integer,
	`snapshot_at` integer DEFAULT 0 NOT NULL,
	FOREIGN KEY (`wallet_id`) REFERENCES `wallets`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `spend_keys_wallet_created` ON `spend_keys` (`wallet_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `wallet_secret_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`wallet_id` text NOT NULL,
	`name` text NOT NULL,
	`key_hash` text NOT NULL,
	`hint` text NOT NULL,
	`created_at` integer NOT NULL,
	`deleted_at` integer,
	FOREIGN KEY (`wallet_id`) REFERENCES `wallets`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `wallet_secret_keys_wallet` ON `wallet_secret_keys` (`wallet_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `wallets` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `wallets_created` ON `wallets` (`created_at`,`id`);