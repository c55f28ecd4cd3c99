-- Child keys (POST /v1/key/children): a key's parent, what it may delegate, what its children take of its
-- cycle; the parent on each ledger row. Columns only: the previous release keeps working on this schema.
ALTER TABLE `spend_keys` ADD `parent_key_id` text;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `delegation_max_depth` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `delegation_max_children` integer;--> statement-breakpoint
ALTER TABLE `spend_keys` ADD `carved_spend_nanos` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `requests` ADD `parent_key_id` text;
