-- Per user and UTC day: memories recorded and their average valence (-1 .. 1).
-- Filter on `day` so BigQuery prunes partitions.
SELECT
  user_id,
  DATE(timestamp) AS day,
  COUNT(*) AS memories,
  AVG(emotional_valence) AS avg_valence
FROM {table}
GROUP BY user_id, day
