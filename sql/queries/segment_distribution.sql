-- Customers per dominant segment on every axis, with shares within the axis.
SELECT d.axis,
       d.segment,
       count(*)                                                          AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY d.axis), 1) AS pct
FROM customer_profiles p,
     LATERAL jsonb_each_text(p.dominant_segments) AS d(axis, segment)
WHERE p.segmentation_status = 'segmented'
GROUP BY d.axis, d.segment
ORDER BY d.axis, customers DESC;
