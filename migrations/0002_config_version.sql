ALTER TABLE `spend_keys` ADD `config_version` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Until now updated_at doubled as the configuration's version: carry it over so versions keep increasing.
UPDATE `spend_keys` SET `config_version` = `updated_at`;
