ALTER TABLE `model_overrides` ADD `context_window` integer;--> statement-breakpoint
ALTER TABLE `requests` ADD `overage` integer DEFAULT false NOT NULL;