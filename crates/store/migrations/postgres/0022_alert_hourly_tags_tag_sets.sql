-- The per-tag-set roll-up (0021) by tag set, then hour (issue 8, docs/decisions/0010-*): a
-- tag-restricted caller's dashboard walks a tenant's distinct tag sets along this index (one
-- seek per tag set, instead of reading every roll-up row of the range to find them), tests its
-- tag rules once per tag set, and reads only the rows of the visible tag sets in the range.
-- PostgreSQL, 30 days of a 400,000-alert tenant: 77,600 roll-up rows read and their jsonb tag
-- sets hashed twice, ~90-120 ms under load, became 20 index seeks and 9,300 rows, ~25 ms.
CREATE INDEX alert_hourly_tags_tag_sets ON alert_hourly_tags (tenant_id, tags, hour);
