-- membership_strengths ({axis: number}) and fuzzy_memberships ({axis: {segment: number}}) lose
-- their GIN indexes. Their values are memberships, and no GIN operator class serves the
-- questions asked of them ("membership of deal_hunter >= 0.3" is a range, not containment):
-- sql/queries/ reads them with ->, ->> and jsonb_each_text after selecting customers by
-- segment, which the GIN indexes on dominant_segments and segment_memberships serve. Keeping
-- them cost a third of the server's time of every profile write: on 1M customers, 125 s of
-- PostgreSQL CPU with them against 79 s without (benchmarks/, first load, 16 batches).
-- Containment on them still works, unindexed: membership_strengths @> '{"price_sensitivity": 1.0}'.
DROP INDEX IF EXISTS customer_profiles_membership_strengths;
DROP INDEX IF EXISTS customer_profiles_fuzzy_memberships;
