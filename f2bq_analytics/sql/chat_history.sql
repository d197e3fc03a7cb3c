-- One user's latest chat turns in [as_of - days days, as_of], newest first:
-- the context of a retrieval-augmented prompt. `timestamp` is the partition column.
SELECT message_in, message_out, timestamp
FROM {table}
WHERE timestamp BETWEEN TIMESTAMP_SUB(@as_of, INTERVAL @days DAY) AND @as_of
  AND user_id = @user_id
  AND intent = @intent
ORDER BY timestamp DESC, interaction_id DESC
LIMIT @limit
