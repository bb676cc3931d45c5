-- tables.lua: table constructors, length, traversal, the table library.
local T = require "harness"

local function sortedkeys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = tostring(k) end
  table.sort(ks)
  return table.concat(ks, ",")
end

T.section "constructors"
do
  local t = {1, 2, 3, x = "a", [10] = "ten", "four"}
  T.eq(#t, 4, "positional fields counted in order")
  T.eq(t[4], "four", "positional field after named")
  T.eq(t.x, "a", "named field")
  T.eq(t[10], "ten", "bracketed key")
  local function three() return 1, 2, 3 end
  T.eq(#{three()}, 3, "last call expands")
  T.eq(#{three(), 10}, 2, "non last call truncates")
  T.eq(#{(three())}, 1, "parenthesized call truncates")
  local u = {[1] = "a", "b"}
  T.eq(u[1], "b", "positional overrides earlier bracketed")
  T.eq(#{nil, nil, 3}, 3, "constructor with nils sets size")
  T.eq(select("#", table.unpack({1, nil, 3})), 3, "unpack constructor with hole")
end

T.section "keys"
do
  local t = {}
  t[1.0] = "float one"
  T.eq(t[1], "float one", "float key normalized to integer")
  T.eq(math.type(next(t)), "integer", "stored key is integer")
  t[2^53] = "big"
  T.eq(t[9007199254740992], "big", "large integral float key normalized")
  t[1.5] = "frac"
  T.eq(t[1.5], "frac", "non integral float key")
  t["1"] = "string one"
  T.eq(t[1], "float one", "string key distinct from integer")
  T.eq(t["1"], "string one", "string key lookup")
  t[-0.0] = "zero"
  T.eq(t[0], "zero", "negative zero key is integer zero")
  t[true] = "yes"
  T.eq(t[true], "yes", "boolean key")
  local k = {}
  t[k] = "table key"
  T.eq(t[k], "table key", "table as key")
  T.eq(t[{}], nil, "different table is a different key")
  T.err("table index is nil", function () local u = {}; u[nil] = 1 end, "nil key assignment")
  T.err("table index is NaN", function () local u = {}; u[0/0] = 1 end, "nan key assignment")
  T.eq(({})[nil], nil, "reading nil key is allowed")
  T.eq(({})[0/0], nil, "reading nan key is allowed")
  T.err("table index is nil", function () rawset({}, nil, 1) end, "rawset nil key")
  T.ok(pcall(function () local u = {}; u[1] = nil end), "assigning nil to absent key is fine")
end

T.section "length"
T.eq(#{}, 0, "empty table length")
T.eq(#{1, 2, 3}, 3, "sequence length")
T.eq(#"abc", 3, "string length")
do
  local t = {}
  for i = 1, 100 do t[i] = i end
  T.eq(#t, 100, "length after appending")
  t[100] = nil
  T.eq(#t, 99, "length after removing last")
  for i = 1, 99 do t[i] = nil end
  T.eq(#t, 0, "length after clearing")
  local h = {n = 1, m = 2}
  T.eq(#h, 0, "hash only table has length zero")
  local s = {}
  s[1] = 1; s[2] = 2; s[3] = 3
  T.eq(#s, 3, "length of hash built sequence")
end

T.section "next and pairs"
do
  T.eq(next({}), nil, "next of empty table")
  local t = {10, 20, 30}
  local k, v = next(t)
  T.eq(k, 1, "next starts with array part")
  T.eq(v, 10, "next first value")
  T.eq(next(t, 3), nil, "next after last")
  T.err("invalid key to 'next'", function () return next({}, "nokey") end, "next with invalid key")
  local h = {a = 1, b = 2, c = 3, 4, 5}
  T.eq(sortedkeys(h), "1,2,a,b,c", "pairs visits all keys")
  local sum = 0
  for _, v2 in pairs(h) do sum = sum + v2 end
  T.eq(sum, 15, "pairs visits all values")
  local cnt = 0
  for k2 in pairs(h) do h[k2] = nil; cnt = cnt + 1 end
  T.eq(cnt, 5, "clearing fields during traversal visits each once")
  T.eq(next(h), nil, "table empty after clearing during traversal")
  local big = {}
  for i = 1, 50 do big["k" .. i] = i end
  local seen = 0
  for k2, v2 in pairs(big) do
    if v2 % 2 == 0 then big[k2] = nil end
    seen = seen + 1
  end
  T.eq(seen, 50, "removing during traversal still visits all")
  local left = 0
  for _ in pairs(big) do left = left + 1 end
  T.eq(left, 25, "removed entries are gone")
  local upd = {a = 1, b = 2}
  for k2 in pairs(upd) do upd[k2] = upd[k2] * 10 end
  T.eq(upd.a + upd.b, 30, "updating existing fields during traversal")
  local f, s, init = pairs({})
  T.eq(f, next, "pairs returns next")
  T.eq(init, nil, "pairs initial key is nil")
  T.eq(type(s), "table", "pairs state is the table")
end

T.section "ipairs"
do
  local out = {}
  for i, v in ipairs({1, 2, nil, 4}) do out[#out + 1] = i .. "=" .. v end
  T.eq(table.concat(out, " "), "1=1 2=2", "ipairs stops at first nil")
  local cnt = 0
  for _ in ipairs({n = 1, [2] = 2}) do cnt = cnt + 1 end
  T.eq(cnt, 0, "ipairs needs index 1")
  local proxy = setmetatable({}, {__index = function (_, i) if i <= 3 then return i * i end end})
  local sq = {}
  for _, v in ipairs(proxy) do sq[#sq + 1] = v end
  T.eq(table.concat(sq, ","), "1,4,9", "ipairs respects __index")
  local f, s, i0 = ipairs({})
  T.eq(i0, 0, "ipairs initial index zero")
  T.eq(f(s, i0), nil, "ipairs iterator on empty table")
end

T.section "insert and remove"
do
  local t = {1, 2, 3}
  table.insert(t, 4)
  T.eq(table.concat(t, ","), "1,2,3,4", "insert at end")
  table.insert(t, 1, 0)
  T.eq(table.concat(t, ","), "0,1,2,3,4", "insert at front")
  table.insert(t, 3, 1.5)
  T.eq(table.concat(t, ","), "0,1,1.5,2,3,4", "insert in middle")
  table.insert(t, #t + 1, 5)
  T.eq(t[#t], 5, "insert at n+1")
  T.err("bad argument #2 to 'insert' (position out of bounds)", function () table.insert(t, 10, 1) end,
        "insert out of bounds")
  T.err("wrong number of arguments to 'insert'", function () table.insert(t, 1, 2, 3) end,
        "insert too many arguments")
  T.eq(table.remove(t), 5, "remove last")
  T.eq(table.remove(t, 1), 0, "remove first")
  T.eq(table.concat(t, ","), "1,1.5,2,3,4", "after removes")
  T.eq(table.remove({}), nil, "remove from empty")
  T.eq(select("#", table.remove({})), 1, "remove from empty returns one value")
  local e = {}
  T.eq(table.remove(e, 0), nil, "remove position zero of empty")
  T.eq(table.remove(e, #e + 1), nil, "remove n+1 position")
  T.err("bad argument #2 to 'remove' (position out of bounds)", function () table.remove({1, 2}, 5) end,
        "remove out of bounds")
  local z = {[0] = "zero"}
  T.eq(table.remove(z, 0), "zero", "remove index zero when n is zero")
  T.eq(z[0], nil, "index zero cleared")
end

T.section "concat"
T.eq(table.concat({}), "", "concat empty")
T.eq(table.concat({1, 2, 3}), "123", "concat no separator")
T.eq(table.concat({"a", "b", "c"}, ", "), "a, b, c", "concat separator")
T.eq(table.concat({"a", "b", "c", "d"}, "", 2, 3), "bc", "concat range")
T.eq(table.concat({"a"}, ",", 3, 2), "", "concat empty range")
T.eq(table.concat({1, 2.5}, " "), "1 2.5", "concat numbers")
T.err("invalid value (table) at index 2 in table for 'concat'", function () return table.concat({1, {}, 3}) end,
      "concat table element")
T.err("invalid value (nil) at index 1 in table for 'concat'", function () return table.concat({}, ",", 1, 1) end,
      "concat missing element")
T.err("bad argument #1 to 'concat' (table expected, got no value)", function () return table.concat() end,
      "concat no table")

T.section "pack and unpack"
do
  local p = table.pack(1, nil, 3)
  T.eq(p.n, 3, "pack n counts nils")
  T.eq(p[3], 3, "pack values")
  T.eq(table.pack().n, 0, "pack empty")
  T.eq(select("#", table.unpack({1, 2, 3})), 3, "unpack all")
  T.eq(select("#", table.unpack({1, 2, 3}, 2)), 2, "unpack from index")
  T.eq(select("#", table.unpack({}, 1, 3)), 3, "unpack explicit range of nils")
  T.eq(select(2, table.unpack({1, 2, 3}, 2, 3)), 3, "unpack range values")
  T.eq(select("#", table.unpack({1}, 5, 4)), 0, "unpack empty range")
  T.eq(table.unpack({[0] = "z"}, 0, 0), "z", "unpack index zero")
  T.err("too many results to unpack", function () return table.unpack({}, 1, 1e8) end, "unpack too many")
  T.err("too many results to unpack", function () return table.unpack({}, math.mininteger, math.maxinteger) end,
        "unpack whole integer range")
end

T.section "move"
do
  local a = {1, 2, 3, 4, 5}
  table.move(a, 2, 4, 1)
  T.eq(table.concat(a, ","), "2,3,4,4,5", "move left overlapping")
  a = {1, 2, 3, 4, 5}
  table.move(a, 1, 3, 3)
  T.eq(table.concat(a, ","), "1,2,1,2,3", "move right overlapping")
  local b = table.move({1, 2, 3}, 1, 3, 2, {})
  T.eq(b[1], nil, "move to other table leaves gap")
  T.eq(b[4], 3, "move to other table")
  T.eq(table.move({1}, 1, 0, 1, {"x"})[1], "x", "move empty range no change")
  local c = {}
  T.eq(table.move({1, 2}, 1, 2, 1, c), c, "move returns destination")
  T.err("bad argument #4 to 'move' (destination wrap around)",
        function () table.move({1, 2}, 1, 2, math.maxinteger) end, "move destination wrap around")
end

T.section "sort"
do
  local t = {5, 2, 8, 1, 9, 3}
  table.sort(t)
  T.eq(table.concat(t, ","), "1,2,3,5,8,9", "sort numbers")
  table.sort(t, function (a, b) return a > b end)
  T.eq(table.concat(t, ","), "9,8,5,3,2,1", "sort with comparator")
  local s = {"banana", "apple", "Cherry"}
  table.sort(s)
  T.eq(table.concat(s, ","), "Cherry,apple,banana", "sort strings")
  local recs = {{n = "b", v = 2}, {n = "a", v = 3}, {n = "c", v = 1}}
  table.sort(recs, function (x, y) return x.v < y.v end)
  T.eq(recs[1].n .. recs[2].n .. recs[3].n, "cba", "sort records by field")
  local mixed = {3, 1.5, 2, -1}
  table.sort(mixed)
  T.eq(mixed[2], 1.5, "sort mixed integers and floats")
  T.err("attempt to compare string with number", function () table.sort({1, "x", 2}) end, "sort incomparable")
  local one = {1}
  table.sort(one)
  T.eq(one[1], 1, "sort one element")
  local big = {}
  for i = 1, 200 do big[i] = (i * 37) % 200 end
  table.sort(big)
  local okk = true
  for i = 2, 200 do if big[i - 1] > big[i] then okk = false end end
  T.ok(okk and big[1] == 0 and big[200] == 199, "sort 200 elements")
end

T.section "metamethod aware library"
do
  local log = {}
  local proxy = setmetatable({}, {
    __index = function (_, k) return "v" .. k end,
    __len = function () return 3 end,
  })
  T.eq(table.concat(proxy, ","), "v1,v2,v3", "concat uses __len and __index")
  T.eq(select(3, table.unpack(proxy)), "v3", "unpack uses __len and __index")
  local sink = setmetatable({}, {__newindex = function (t, k, v) log[#log + 1] = k .. "=" .. v; rawset(t, k, v) end})
  table.insert(sink, "x")
  T.eq(table.concat(log, ";"), "1=x", "insert uses __newindex")
end

T.done()
