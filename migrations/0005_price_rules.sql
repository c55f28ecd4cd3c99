ALTER TABLE `model_overrides` ADD `rates` text;--> statement-breakpoint
ALTER TABLE `model_overrides` ADD `service_tiers` text;--> statement-breakpoint
ALTER TABLE `requests` ADD `priced_model` text;--> statement-breakpoint
ALTER TABLE `requests` ADD `fee_cost_femtos` text DEFAULT '0' NOT NULL;--> statement-breakpoint
ALTER TABLE `requests` ADD `usage` text;--> statement-breakpoint
ALTER TABLE `requests` ADD `cost_note` text;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `clamp_output` integer DEFAULT true NOT NULL;