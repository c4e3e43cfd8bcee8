-- The exercise's queries, written as named continuous queries.
--
-- Each is the SQL twin of a built-in query of hhar process (processor/queries.py), named
-- after it with _sql: run them beside the built-ins and compare the result topics.
--   hhar process --query-file examples/exercise.sql
--   hhar watch --query device_activity --query device_activity_sql
-- They read the table events (valid events, with event_time and the watermark) and history
-- (the static history). stairs_by_user_sql and windowed_activity_sql spell out the settings'
-- defaults (HHAR_STAIRS_USERS=a,b, HHAR_STAIRS_DEVICE=nexus4_1, HHAR_WINDOW=10 minutes).

-- The running count of events.
CREATE QUERY total_count_sql AS
SELECT count(*) AS count
FROM events;

-- Events per phone and activity: groupBy(Device, gt).count().
CREATE QUERY device_activity_sql AS
SELECT Device, gt, count(*) AS count
FROM events
GROUP BY Device, gt;

-- cube(Device, gt): every subtotal, told apart by grouping_id (1 = every gt of a Device,
-- 2 = every Device of a gt, 3 = the grand total).
CREATE QUERY device_activity_cube_sql AS
SELECT Device, gt, grouping_id() AS grouping_id, count(*) AS count
FROM events
GROUP BY CUBE (Device, gt);

-- rollup(Device, gt): the subtotals per Device and the grand total.
CREATE QUERY device_activity_rollup_sql AS
SELECT Device, gt, grouping_id() AS grouping_id, count(*) AS count
FROM events
GROUP BY ROLLUP (Device, gt);

-- Stairs of users a and b on nexus4_1: all three conditions hold (the exercise's
-- A & B | C & D counted every nexus4_1 row of user b).
CREATE QUERY stairs_by_user_sql AS
SELECT User, count(*) AS count
FROM events
WHERE gt LIKE '%stairs%' AND User IN ('a', 'b') AND Device = 'nexus4_1'
GROUP BY User;

-- Mean gyroscope readings per activity and phone model.
CREATE QUERY activity_stats_sql AS
SELECT gt, Model, avg(x) AS x_avg, avg(y) AS y_avg, avg(z) AS z_avg, count(*) AS count
FROM events
GROUP BY gt, Model;

-- The live means beside the same means over the static history (a stream-static join).
CREATE QUERY live_vs_historical_sql AS
WITH live AS (
  SELECT gt, Model, avg(x) AS x_avg, avg(y) AS y_avg, avg(z) AS z_avg, count(*) AS count
  FROM events
  GROUP BY gt, Model
), historical AS (
  SELECT gt, Model, avg(x) AS historical_x_avg, avg(y) AS historical_y_avg,
         avg(z) AS historical_z_avg, count(*) AS historical_count
  FROM history
  GROUP BY gt, Model
)
SELECT *
FROM live LEFT JOIN historical USING (gt, Model);

-- Events per phone and activity in tumbling 10-minute windows of event time, each window
-- once, when the watermark has closed it.
CREATE QUERY windowed_activity_sql AS
SELECT window.start AS window_start, window.end AS window_end, Device, gt, count(*) AS count
FROM events
GROUP BY window(event_time, '10 minutes'), Device, gt
EMIT FINAL;
