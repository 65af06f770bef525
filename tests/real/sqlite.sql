-- sqlite.sql: the queries of tests/real/sqlite.sh, run after the generated
-- script has filled t (a million rows) and g (1000 rows).  The expected
-- results (sqlite.expected) were checked independently (Python over the
-- same formulas).
CREATE INDEX t_a ON t(a);
CREATE INDEX t_s ON t(s);
CREATE INDEX t_b_a ON t(b, a);
SELECT 'count', count(*), sum(a), sum(b), min(s), max(s) FROM t;
SELECT 'groups', b, count(*), sum(a) FROM t GROUP BY b ORDER BY sum(a) DESC, b LIMIT 3;
SELECT 'join', count(*), sum(length(g.name)) FROM t JOIN g ON g.k = t.b WHERE t.a < 500000;
SELECT 'sort', id, s FROM t ORDER BY s DESC, id LIMIT 1 OFFSET 500000;
SELECT 'sort2', id FROM (SELECT id, a FROM t ORDER BY a * 13 % 1000, id) LIMIT 1 OFFSET 777777;
SELECT 'distinct', count(DISTINCT a), count(DISTINCT substr(s, 1, 4)) FROM t;
SELECT 'range', count(*), sum(id) FROM t WHERE a BETWEEN 1000 AND 200000;
DELETE FROM t WHERE id % 3 = 0;
UPDATE t SET s = s || '-x' WHERE b < 100;
SELECT 'after', count(*), sum(length(s)), sum(a) FROM t;
SELECT 'self', count(*) FROM t AS x JOIN t AS y ON y.id = x.id + 1 WHERE x.b = 7;
PRAGMA integrity_check;
