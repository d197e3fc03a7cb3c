-- Per user and UTC day of creation: tasks, completed tasks and their share.
-- Filter on `day` so BigQuery prunes partitions.
SELECT
  user_id,
  DATE(created_at) AS day,
  COUNT(*) AS tasks,
  COUNTIF(completed) AS completed,
  SAFE_DIVIDE(COUNTIF(completed), COUNT(*)) AS completion_rate
FROM {table}
GROUP BY user_id, day
