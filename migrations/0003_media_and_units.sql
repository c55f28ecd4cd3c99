ALTER TABLE `requests` ADD `media_input_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `requests` ADD `units` integer DEFAULT 0 NOT NULL;