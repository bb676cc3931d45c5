-- metatables.lua: every metamethod and the raw access functions.
local T = require "harness"

T.section "index"
do
  local base = {greet = "hello"}
  local t = setmetatable({}, {__index = base})
  T.eq(t.greet, "hello", "__index table")
  T.eq(rawget(t, "greet"), nil, "rawget bypasses __index")
  local mid = setmetatable({mid = 1}, {__index = base})
  local top = setmetatable({}, {__index = mid})
  T.eq(top.greet, "hello", "__index chain two levels")
  T.eq(top.mid, 1, "__index chain first level")
  local calls = {}
  local f = setmetatable({}, {__index = function (self, k) calls[#calls + 1] = k; return k .. "!" end})
  T.eq(f.abc, "abc!", "__index function")
  T.eq(f[1], "1!", "__index function numeric key")
  T.eq(#calls, 2, "__index function called each time")
  f.abc = "own"
  T.eq(f.abc, "own", "own field shadows __index")
  local gotself
  local g = setmetatable({}, {__index = function (self) gotself = self end})
  local _ = g.x
  T.eq(gotself, g, "__index receives the table")
  T.eq(setmetatable({}, {__index = function () return 1, 2 end}).x, 1, "__index result truncated to one")
  local str_idx = setmetatable({}, {__index = "abc"})
  T.eq(str_idx.len, string.len, "__index can be a string (uses string metatable)")
  local loop = setmetatable({}, {})
  getmetatable(loop).__index = loop
  T.err("'__index' chain too long; possible loop", function () return loop.nothing end, "self __index loop detected")
  local deep = {}
  local cur = deep
  for _ = 1, 2100 do
    local nxt = {}
    setmetatable(cur, {__index = nxt})
    cur = nxt
  end
  cur.found = true
  T.err("'__index' chain too long; possible loop", function () return deep.found end, "__index chain too long")
end

T.section "newindex"
do
  local store = {}
  local t = setmetatable({}, {__newindex = store})
  t.x = 1
  T.eq(rawget(t, "x"), nil, "__newindex table redirects")
  T.eq(store.x, 1, "__newindex table receives value")
  local log = {}
  local f = setmetatable({}, {__newindex = function (tbl, k, v) log[#log + 1] = k .. "=" .. tostring(v); rawset(tbl, k, v) end})
  f.a = 1
  f.a = 2
  T.eq(table.concat(log, ","), "a=1", "__newindex only for absent keys")
  T.eq(f.a, 2, "existing key assigned directly")
  rawset(f, "b", 3)
  T.eq(#log, 1, "rawset bypasses __newindex")
  local ro = setmetatable({}, {__newindex = function (_, k) error("readonly " .. k, 2) end})
  T.err("readonly key", function () ro.key = 1 end, "__newindex raising error")
  local t2 = setmetatable({x = 1}, {__newindex = function () error("never") end})
  t2.x = 5
  T.eq(rawget(t2, "x"), 5, "existing field assigned without __newindex")
  t2.x = nil
  T.err("never", function () t2.x = 6 end, "assigning after removal calls __newindex")
end

T.section "call"
do
  local c = setmetatable({}, {__call = function (self, a, b) return self, a + b end})
  local s, sum = c(2, 3)
  T.eq(s, c, "__call receives object first")
  T.eq(sum, 5, "__call arguments")
  local inner = setmetatable({}, {__call = function (...) return select("#", ...), ... end})
  local outer = setmetatable({}, {__call = inner})
  local n, a1, a2, a3 = outer("arg")
  T.eq(n, 3, "__call chained through callable table adds each object")
  T.eq(a1, inner, "__call chain first argument is inner object")
  T.eq(a2, outer, "__call chain second argument is outer object")
  T.eq(a3, "arg", "__call chain original argument last")
  T.err("attempt to call a table value (local 'x')", function () local x = {} ; x() end, "call table without __call")
  local m = setmetatable({}, {__call = function (_, ...) return select("#", ...) end})
  T.eq(m(nil, nil), 2, "__call preserves argument count")
  T.eq(pcall(m, 1), true, "pcall on callable table")
end

T.section "arithmetic"
do
  local mt = {}
  local function V(x) return setmetatable({x = x}, mt) end
  local function val(a) return type(a) == "table" and a.x or a end
  mt.__add = function (a, b) return V(val(a) + val(b)) end
  mt.__sub = function (a, b) return V(val(a) - val(b)) end
  mt.__mul = function (a, b) return V(val(a) * val(b)) end
  mt.__div = function (a, b) return V(val(a) / val(b)) end
  mt.__mod = function (a, b) return V(val(a) % val(b)) end
  mt.__pow = function (a, b) return V(val(a) ^ val(b)) end
  mt.__unm = function (a) return V(-a.x) end
  mt.__idiv = function (a, b) return V(val(a) // val(b)) end
  mt.__band = function (a, b) return V(val(a) & val(b)) end
  mt.__bor = function (a, b) return V(val(a) | val(b)) end
  mt.__bxor = function (a, b) return V(val(a) ~ val(b)) end
  mt.__shl = function (a, b) return V(val(a) << val(b)) end
  mt.__shr = function (a, b) return V(val(a) >> val(b)) end
  mt.__bnot = function (a) return V(~a.x) end
  T.eq((V(2) + V(3)).x, 5, "__add")
  T.eq((V(2) + 10).x, 12, "__add with number right")
  T.eq((10 + V(2)).x, 12, "__add with number left")
  T.eq((V(7) - 2).x, 5, "__sub")
  T.eq((V(7) * 2).x, 14, "__mul")
  T.eq((V(7) / 2).x, 3.5, "__div")
  T.eq((V(7) % 4).x, 3, "__mod")
  T.eq((V(2) ^ 3).x, 8.0, "__pow")
  T.eq((-V(4)).x, -4, "__unm")
  T.eq((V(7) // 2).x, 3, "__idiv")
  T.eq((V(6) & 3).x, 2, "__band")
  T.eq((V(6) | 1).x, 7, "__bor")
  T.eq((V(6) ~ 3).x, 5, "__bxor")
  T.eq((V(1) << 4).x, 16, "__shl")
  T.eq((V(16) >> 2).x, 4, "__shr")
  T.eq((~V(0)).x, -1, "__bnot")
  local seen
  local bmt = {__band = function (a, b) seen = {a, b}; return "band" end}
  T.eq(1.5 & setmetatable({}, bmt), "band", "__band with non integral float operand")
  T.eq(seen[1], 1.5, "__band receives original float")
  local amt = {__add = function (a, b) return "right" end}
  T.eq(1 + setmetatable({}, amt), "right", "__add found on second operand")
  T.err("attempt to perform arithmetic on a table value (local 'a')",
        function () local a = {}; return a + 1 end, "arithmetic on table without metamethod")
  T.err("attempt to perform arithmetic on a table value (field 'y')",
        function () local o = {y = {}}; return 1 - o.y end, "arithmetic on table field")
  local first = setmetatable({}, {__add = function () return "first" end})
  local second = setmetatable({}, {__add = function () return "second" end})
  T.eq(first + second, "first", "left operand metamethod wins")
end

T.section "concat"
do
  local mt = {__concat = function (a, b)
    local x = type(a) == "table" and "T" or a
    local y = type(b) == "table" and "T" or b
    return x .. y
  end}
  local o = setmetatable({}, mt)
  T.eq(o .. "x", "Tx", "__concat left")
  T.eq("x" .. o, "xT", "__concat right")
  T.eq("a" .. o .. "b", "aTb", "__concat in chain")
  T.eq(1 .. o, "1T", "__concat with number")
  T.err("attempt to concatenate a table value (local 't')",
        function () local t = {}; return "x" .. t end, "concat table without metamethod")
  T.err("attempt to concatenate a boolean value",
        function () return "x" .. tostring(nil) .. (true and true) end, "concat boolean")
end

T.section "len"
do
  local l = setmetatable({1, 2, 3}, {__len = function () return 42 end})
  T.eq(#l, 42, "__len")
  T.eq(rawlen(l), 3, "rawlen bypasses __len")
  T.eq(rawlen("abcd"), 4, "rawlen of string")
  T.err("bad argument #1 to 'rawlen' (table or string expected, got number)", function () return rawlen(5) end, "rawlen of number")
  T.eq(#setmetatable({}, {__len = function () return "str" end}), "str", "__len may return non number")
  T.err("attempt to get length of a number value (local 'n')",
        function () local n = 5; return #n end, "length of number")
  T.err("object length is not an integer",
        function () return table.insert(setmetatable({}, {__len = function () return 1.5 end}), 1) end,
        "library needs integer __len")
end

T.section "equality"
do
  local eqcalls = 0
  local mt = {__eq = function (a, b) eqcalls = eqcalls + 1; return a.id == b.id end}
  local a = setmetatable({id = 1}, mt)
  local b = setmetatable({id = 1}, mt)
  local c = setmetatable({id = 2}, mt)
  T.ok(a == b, "__eq true")
  T.ok(a ~= c, "__eq false gives ~=")
  T.eq(eqcalls, 2, "__eq called for == and ~=")
  T.ok(a == a and eqcalls == 2, "__eq not called for identical")
  T.ok(not (a == 1), "__eq not called with different types")
  T.eq(eqcalls, 2, "__eq call count after different types")
  T.ok(not rawequal(a, b), "rawequal ignores __eq")
  T.ok(rawequal(a, a), "rawequal identity")
  local plain = {id = 1}
  T.ok(a == plain, "__eq from first operand only needed")
  local r = setmetatable({}, {__eq = function () return "yes" end})
  T.eq(r == {}, true, "__eq result converted to boolean")
end

T.section "ordering"
do
  local mt = {}
  mt.__lt = function (a, b) return a.v < b.v end
  mt.__le = function (a, b) return a.v <= b.v end
  local function O(v) return setmetatable({v = v}, mt) end
  T.ok(O(1) < O(2), "__lt")
  T.ok(not (O(2) < O(1)), "__lt false")
  T.ok(O(2) > O(1), "__lt for >")
  T.ok(O(1) <= O(1), "__le")
  T.ok(O(2) >= O(1), "__le for >=")
  local onlylt = {__lt = function (a, b) return a.v < b.v end}
  local x, y = setmetatable({v = 1}, onlylt), setmetatable({v = 2}, onlylt)
  -- the standard build defines LUA_COMPAT_5_3, so __le falls back to not __lt(b, a)
  T.eq(x <= y, true, "__le emulated by __lt (LUA_COMPAT_LT_LE)")
  T.eq(y <= x, false, "__le emulation false case")
  T.err("attempt to compare two table values", function () return {} < {} end, "compare tables without metamethod")
  T.err("attempt to compare number with table", function () return 1 < {} end, "compare number with table")
  local mixed = setmetatable({}, {__lt = function (a, b) return type(a) == "number" end})
  T.ok(1 < mixed, "__lt with number on left")
  T.ok(not (mixed < 1), "__lt with number on right")
  T.eq(O(1) < O(2), true, "__lt result is boolean")
  local arr = {O(3), O(1), O(2)}
  table.sort(arr)
  T.eq(arr[1].v .. arr[2].v .. arr[3].v, "123", "sort uses __lt")
end

T.section "tostring and name"
do
  local o = setmetatable({}, {__tostring = function () return "custom" end})
  T.eq(tostring(o), "custom", "__tostring")
  T.err("'__tostring' must return a string",
        function () return tostring(setmetatable({}, {__tostring = function () return {} end})) end,
        "__tostring returning non string")
  T.eq(tostring(setmetatable({}, {__tostring = function () return 7 end})), "7",
       "__tostring may return a number, converted to string")
  local named = setmetatable({}, {__name = "MyType"})
  T.ok(tostring(named):match("^MyType: ") ~= nil, "__name in tostring")
  T.err("bad argument #1 to 'upper' (string expected, got MyType)",
        function () return string.upper(named) end, "__name in bad argument message")
  T.err("attempt to index a number value (local 'n')", function () local n = 1; return n.x end, "index number")
  T.ok(tostring({}):match("^table: ") ~= nil, "default tostring of table")
  T.eq(tostring(nil), "nil", "tostring nil")
  T.eq(tostring(true), "true", "tostring true")
  local nonstr = setmetatable({}, {__name = 42})
  T.ok(tostring(nonstr):match("^table: ") ~= nil, "non string __name ignored")
end

T.section "protection"
do
  local p = setmetatable({}, {__metatable = "locked"})
  T.eq(getmetatable(p), "locked", "__metatable returned by getmetatable")
  T.err("cannot change a protected metatable", function () setmetatable(p, {}) end, "protected metatable")
  T.err("cannot change a protected metatable", function () setmetatable(p, nil) end, "protected metatable removal")
  T.ok(debug.getmetatable(p).__metatable == "locked", "debug.getmetatable sees real metatable")
  local f = setmetatable({}, {__metatable = false})
  T.eq(getmetatable(f), false, "__metatable false")
  T.err("bad argument #2 to 'setmetatable' (nil or table expected, got number)",
        function () setmetatable({}, 1) end, "setmetatable with number")
  T.err("bad argument #1 to 'setmetatable' (table expected, got number)",
        function () setmetatable(1, {}) end, "setmetatable on number")
  local t = {}
  T.eq(setmetatable(t, nil), t, "setmetatable returns table")
  T.eq(getmetatable(t), nil, "metatable removed")
end

T.section "strings"
do
  local smt = getmetatable("")
  T.eq(type(smt), "table", "strings have a metatable")
  T.eq(smt.__index, string, "string metatable indexes string library")
  T.eq(getmetatable("abc"), smt, "all strings share the metatable")
  T.eq(("x"):rep(2), "xx", "method call on string")
  string.shout = function (s) return s:upper() .. "!" end
  T.eq(("hi"):shout(), "HI!", "string library extension visible")
  string.shout = nil
  T.eq(getmetatable(1), nil, "numbers have no metatable")
  T.err("attempt to call a nil value (method 'nosuch')", function () return ("x"):nosuch() end,
        "calling missing string method")
end

T.section "pairs"
do
  local p = setmetatable({}, {__pairs = function (t)
    local i = 0
    return function () i = i + 1; if i <= 3 then return i, i * 10 end end, t, nil
  end})
  local out = {}
  for k, v in pairs(p) do out[#out + 1] = k .. ":" .. v end
  T.eq(table.concat(out, ","), "1:10,2:20,3:30", "__pairs")
  T.eq(next(p), nil, "next ignores __pairs")
  local extra = setmetatable({}, {__pairs = function () return next, {a = 1}, nil, "ignored" end})
  local ks = {}
  for k in pairs(extra) do ks[#ks + 1] = k end
  T.eq(table.concat(ks), "a", "__pairs results used as iterator triple")
end

T.section "rawaccess"
do
  local t = setmetatable({}, {__index = function () return "meta" end, __newindex = function () error("no") end})
  T.eq(rawset(t, "k", "v"), t, "rawset returns table")
  T.eq(rawget(t, "k"), "v", "rawget after rawset")
  T.eq(rawget(t, "other"), nil, "rawget miss")
  T.eq(t.other, "meta", "normal get uses __index")
  T.err("bad argument #1 to 'rawget' (table expected, got string)", function () return rawget("s", 1) end,
        "rawget on string")
  T.eq(rawequal("a", "a"), true, "rawequal strings")
  T.eq(rawequal(1, 1.0), true, "rawequal integer and float")
end

T.section "misc metamethods"
do
  local mt = {__index = function (t, k) return k * 2 end}
  local t = setmetatable({}, mt)
  mt.__index = function (t2, k) return k * 3 end
  T.eq(t[2], 6, "metatable changes seen immediately")
  local ud = io.stdout
  T.eq(type(getmetatable(ud).__index), "table", "userdata metatable")
  T.eq(getmetatable(ud).__name, "FILE*", "file handle __name")
  local mode = setmetatable({}, {__close = function () end})
  T.eq(type(getmetatable(mode).__close), "function", "__close stored like any field")
  local idx_err = setmetatable({}, {__index = function () error("boom") end})
  T.err("boom", function () return idx_err.x end, "error inside __index propagates")
  T.err("attempt to index a nil value (field 'missing')",
        function () local o = {}; return o.missing.x end, "index nil field")
end

T.done()
