-- One user's memories in [as_of - days days, as_of] per UTC day, oldest first,
-- each row carrying the window's overall average valence too. `timestamp` is the
-- partition column.
WITH recent AS (
  SELECT timestamp, emotional_valence
  FROM {table}
  WHERE timestamp BETWEEN TIMESTAMP_SUB(@as_of, INTERVAL @days DAY) AND @as_of
    AND user_id = @user_id
)
SELECT
  DATE(timestamp) AS day,
  COUNT(*) AS memories,
  AVG(emotional_valence) AS avg_valence,
  (SELECT AVG(emotional_valence) FROM recent) AS overall_avg_valence
FROM recent
GROUP BY day
ORDER BY day
