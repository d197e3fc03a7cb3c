-- Share of one user's tasks created in [as_of - days days, as_of] that are
-- completed (NULL when there are none). `created_at` is the partition column.
SELECT
  COUNT(*) AS tasks,
  COUNTIF(completed) AS completed,
  SAFE_DIVIDE(COUNTIF(completed), COUNT(*)) AS rate
FROM {table}
WHERE created_at BETWEEN TIMESTAMP_SUB(@as_of, INTERVAL @days DAY) AND @as_of
  AND user_id = @user_id
