# jq.jq: the queries of tests/real/jq.sh over 200,000 generated records
# (results checked independently with Python, see jq.expected)
(length),
(group_by(.g) | map({g: .[0].g, n: length, sum: (map(.v) | add)}) | sort_by(-.sum, .g) | .[0:3] | map("\(.g):\(.n):\(.sum)") | join(" ")),
(sort_by(.name) | .[123456] | "\(.id) \(.name)"),
([.[] | .tags | length] | add),
(map(select(.v % 7 == 0)) | length),
(map({key: .name, value: .v}) | from_entries | "\(keys | length) \(to_entries | map(.value) | add) \(.n012345)"),
([.[] | .tags[]] | group_by(.) | map("\(.[0])=\(length)") | join(",")),
(map(.sub.y) | unique | join(",")),
(reduce .[] as $r ({}; .[$r.sub.y] += $r.sub.x) | tojson),
(map(tostring) | map(length) | add),
([paths] | length)
