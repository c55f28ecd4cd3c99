CREATE TABLE `ledger_days` (
	`day` integer PRIMARY KEY NOT NULL,
	`raw_rows` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `retention_state` (
	`name` text PRIMARY KEY NOT NULL,
	`value` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `usage_daily` (
	`day` integer NOT NULL,
	`wallet_id` text NOT NULL,
	`spend_key_id` text NOT NULL,
	`model` text NOT NULL,
	`requests` integer NOT NULL,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`cache_read_tokens` integer NOT NULL,
	`cache_write_tokens` integer NOT NULL,
	`reasoning_tokens` integer NOT NULL,
	`media_input_tokens` integer NOT NULL,
	`units` integer NOT NULL,
	`cost_nanos` integer NOT NULL,
	PRIMARY KEY(`wallet_id`, `day`, `spend_key_id`, `model`)
);
--> statement-breakpoint
CREATE INDEX `usage_daily_key_day` ON `usage_daily` (`spend_key_id`,`day`);--> statement-breakpoint
ALTER TABLE `requests` ADD `archive_part` text;--> statement-breakpoint
CREATE INDEX `requests_created` ON `requests` (`created_at`);--> statement-breakpoint
CREATE INDEX `requests_archive_part` ON `requests` (`archive_part`) WHERE "requests"."archive_part" IS NOT NULL;--> statement-breakpoint
-- Hand-written after drizzle's statements: rollups and per-day counts of the rows already here, then the triggers
-- that keep both exact from now on (every insert adds its row once; a conflicting replay inserts nothing).
INSERT INTO `usage_daily` SELECT `created_at` / 86400000, `wallet_id`, `spend_key_id`, `model`, count(*),
  sum(`input_tokens`), sum(`output_tokens`), sum(`cache_read_tokens`), sum(`cache_write_tokens`),
  sum(`reasoning_tokens`), sum(`media_input_tokens`), sum(`units`), sum(`cost_nanos`)
FROM `requests` GROUP BY 1, 2, 3, 4;--> statement-breakpoint
INSERT INTO `ledger_days` SELECT `created_at` / 86400000, count(*) FROM `requests` GROUP BY 1;--> statement-breakpoint
CREATE TRIGGER `requests_rollup` AFTER INSERT ON `requests` BEGIN
  INSERT INTO `usage_daily` VALUES (NEW.`created_at` / 86400000, NEW.`wallet_id`, NEW.`spend_key_id`, NEW.`model`, 1,
    NEW.`input_tokens`, NEW.`output_tokens`, NEW.`cache_read_tokens`, NEW.`cache_write_tokens`,
    NEW.`reasoning_tokens`, NEW.`media_input_tokens`, NEW.`units`, NEW.`cost_nanos`)
  ON CONFLICT DO UPDATE SET `requests` = `requests` + 1, `input_tokens` = `input_tokens` + excluded.`input_tokens`,
    `output_tokens` = `output_tokens` + excluded.`output_tokens`,
    `cache_read_tokens` = `cache_read_tokens` + excluded.`cache_read_tokens`,
    `cache_write_tokens` = `cache_write_tokens` + excluded.`cache_write_tokens`,
    `reasoning_tokens` = `reasoning_tokens` + excluded.`reasoning_tokens`,
    `media_input_tokens` = `media_input_tokens` + excluded.`media_input_tokens`,
    `units` = `units` + excluded.`units`, `cost_nanos` = `cost_nanos` + excluded.`cost_nanos`;
  INSERT INTO `ledger_days` VALUES (NEW.`created_at` / 86400000, 1)
  ON CONFLICT DO UPDATE SET `raw_rows` = `raw_rows` + 1;
END;--> statement-breakpoint
CREATE TRIGGER `requests_archived` AFTER DELETE ON `requests` BEGIN
  UPDATE `ledger_days` SET `raw_rows` = `raw_rows` - 1 WHERE `day` = OLD.`created_at` / 86400000;
END;
