-- Named continuous queries that `hhar process` runs beside the built-in ones (docker compose
-- mounts this folder into the processor: HHAR_QUERY_FILE=/queries). Add a file, or a
-- statement, and restart the processor; the README's "Named queries" section has the rules.

-- How much of each phone's recording is walking, in percent.
CREATE QUERY walking_percent AS
SELECT Device, round(100 * avg(CASE WHEN gt = 'walk' THEN 1 ELSE 0 END), 2) AS walking_percent
FROM events
GROUP BY Device;
