-- Per user and UTC day: interactions, tokens (NULL as 0), errors (non-empty
-- error_code) and average answer time. Filter on `day` so BigQuery prunes partitions.
SELECT
  user_id,
  DATE(timestamp) AS day,
  COUNT(*) AS interactions,
  SUM(IFNULL(tokens_in, 0) + IFNULL(tokens_out, 0)) AS total_tokens,
  COUNTIF(error_code != '') AS errors,
  AVG(duration_ms) AS avg_duration_ms
FROM {table}
GROUP BY user_id, day
