-- Members of an archetype (a combination of dominant segments across axes). Without a
-- parameter it lists the members of the largest archetype; in psql pass another one with
--   psql -v archetype="'a_0123456789ab'" -f sql/queries/archetype_members.sql
-- and replace the `top` CTE's SELECT by: SELECT :archetype::text AS archetype_id
WITH top AS (
    SELECT archetype_id
    FROM customer_profiles
    WHERE archetype_id IS NOT NULL
    GROUP BY archetype_id
    ORDER BY count(*) DESC, archetype_id
    LIMIT 1
)
SELECT p.archetype_id,
       p.customer_id,
       round(p.lifetime_value::numeric, 2)       AS lifetime_value,
       round(p.overall_confidence::numeric, 3)   AS confidence,
       p.dominant_segments
FROM customer_profiles p
JOIN top USING (archetype_id)
ORDER BY p.overall_confidence DESC, p.customer_id
LIMIT 100;
