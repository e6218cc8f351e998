-- Generated tokens per target per minute, straight from the Parquet files of one or more
-- recordings (REC_GLOB, e.g. 'recordings/*'), as Prometheus's increase() counts them: each
-- step between two scrapes of one series adds its difference, or the new value after a
-- reset (a restart). The target is the recording's directory.
WITH s AS (
    SELECT regexp_extract(sa.filename, '(.*)/samples-[0-9]+\.parquet$', 1) AS target,
           sa.labels,
           sc.completed_mono_ns,
           sa.value
    FROM read_parquet(getvariable('rec_glob') || '/samples-*.parquet', filename = true) AS sa
    JOIN read_parquet(getvariable('rec_glob') || '/scrapes-*.parquet', filename = true) AS sc
      ON sa.scrape_seq = sc.seq
     AND regexp_extract(sa.filename, '(.*)/samples-[0-9]+\.parquet$', 1)
       = regexp_extract(sc.filename, '(.*)/scrapes-[0-9]+\.parquet$', 1)
    WHERE sa.name = 'vllm:generation_tokens_total' AND isfinite(sa.value)
),
steps AS (
    SELECT target, completed_mono_ns,
           value - lag(value) OVER w AS d,
           value,
           lag(value) OVER w AS prev
    FROM s
    WINDOW w AS (PARTITION BY target, labels ORDER BY completed_mono_ns)
)
SELECT target,
       floor(completed_mono_ns / 60e9)::BIGINT AS minute,
       sum(CASE WHEN d >= 0 THEN d ELSE value END) AS tokens,
       sum(CASE WHEN d >= 0 THEN d ELSE value END) / 60.0 AS tok_per_s
FROM steps
WHERE prev IS NOT NULL
GROUP BY target, minute
ORDER BY target, minute;
