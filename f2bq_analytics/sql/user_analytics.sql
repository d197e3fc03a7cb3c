-- One user's activity over [as_of - days days, as_of]: totals and the 3 most
-- frequent intents (ties by name). The BETWEEN on `timestamp`, the partition
-- column, lets BigQuery read only the window's partitions; clustering on user_id
-- then skips other users' blocks.
WITH recent AS (
  SELECT timestamp, intent, duration_ms, tokens_in, tokens_out, error_code
  FROM {table}
  WHERE timestamp BETWEEN TIMESTAMP_SUB(@as_of, INTERVAL @days DAY) AND @as_of
    AND user_id = @user_id
),
intents AS (
  SELECT intent AS value, COUNT(*) AS n
  FROM recent
  WHERE intent IS NOT NULL
  GROUP BY intent
)
SELECT
  COUNT(*) AS total_interactions,
  COUNT(DISTINCT DATE(timestamp)) AS active_days,
  AVG(duration_ms) AS avg_duration_ms,
  IFNULL(SUM(IFNULL(tokens_in, 0) + IFNULL(tokens_out, 0)), 0) AS total_tokens,
  COUNTIF(error_code != '') AS error_count,
  (SELECT ARRAY_AGG(STRUCT(value AS value, n AS n) ORDER BY n DESC, value LIMIT 3) FROM intents) AS top_intents
FROM recent
