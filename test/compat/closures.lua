-- closures.lua: closures, upvalues, varargs, goto.
local T = require "harness"

T.section "upvalues"
do
  local function counter()
    local n = 0
    return function () n = n + 1; return n end, function () return n end
  end
  local inc, get = counter()
  inc(); inc()
  T.eq(get(), 2, "two closures share an upvalue")
  local inc2 = counter()
  T.eq(inc2(), 1, "separate calls have separate upvalues")
  T.eq(get(), 2, "other counter unaffected")

  local x = 1
  local function readx() return x end
  x = 5
  T.eq(readx(), 5, "closure sees later assignment to local")

  local fns = {}
  for i = 1, 3 do fns[i] = function () return i end end
  T.eq(fns[1]() + fns[2]() * 10 + fns[3]() * 100, 321, "numeric for creates fresh local per iteration")

  local gfns = {}
  for _, v in ipairs({"a", "b"}) do gfns[#gfns + 1] = function () return v end end
  T.eq(gfns[1]() .. gfns[2](), "ab", "generic for creates fresh local per iteration")

  local wfns = {}
  local j = 0
  while j < 3 do
    j = j + 1
    local k = j
    wfns[j] = function () k = k + 10; return k end
  end
  T.eq(wfns[1]() + wfns[1](), 32, "while body local is fresh and persistent")
  T.eq(wfns[3](), 13, "while body locals independent")

  local shared = {}
  for i = 1, 2 do
    local v = 0
    shared[i] = {function () v = v + 1 end, function () return v end}
  end
  shared[1][1](); shared[1][1](); shared[2][1]()
  T.eq(shared[1][2]() * 10 + shared[2][2](), 21, "per iteration upvalue shared by its pair")

  local loopvar = {}
  for i = 1, 2 do
    loopvar[i] = function () i = i + 100; return i end
  end
  T.eq(loopvar[1](), 101, "modifying loop variable copy in closure")
  T.eq(loopvar[1](), 201, "loop variable copy persists")
end

T.section "recursion"
do
  local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end
  T.eq(fact(20), 2432902008176640000, "local recursive function")
  local fib
  fib = function (n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
  T.eq(fib(20), 6765, "recursion through upvalue")
  local function even(n) if n == 0 then return true end return not even(n - 1) end
  T.eq(even(10), true, "recursion parity")
  local function loop(n, acc) if n == 0 then return acc end return loop(n - 1, acc + 1) end
  T.eq(loop(100000, 0), 100000, "proper tail calls do not grow the stack")
  local anon = function (n) return n end
  T.eq(debug.getinfo(anon, "S").what, "Lua", "function info what")
  local depth = 0
  local function deep(n) depth = depth + 1; if n > 0 then deep(n - 1) end end
  deep(150)
  T.eq(depth, 151, "non tail recursion 150 deep")
end

T.section "debug upvalues"
do
  local a, b = 10, 20
  local function f() return a + b end
  local name1, val1 = debug.getupvalue(f, 1)
  T.eq(name1, "a", "getupvalue name")
  T.eq(val1, 10, "getupvalue value")
  T.eq(debug.getupvalue(f, 3), nil, "getupvalue out of range")
  T.eq(debug.setupvalue(f, 2, 5), "b", "setupvalue returns name")
  T.eq(b, 5, "setupvalue changes shared local")
  T.eq(f(), 15, "closure sees setupvalue")
  local function g() return a end
  T.ok(debug.upvalueid(f, 1) == debug.upvalueid(g, 1), "upvalueid equal for shared upvalue")
  T.ok(debug.upvalueid(f, 1) ~= debug.upvalueid(f, 2), "upvalueid differs for different upvalues")
  local x1, x2 = 1, 2
  local function h1() return x1 end
  local function h2() return x2 end
  debug.upvaluejoin(h1, 1, h2, 1)
  T.eq(h1(), 2, "upvaluejoin makes closure use other upvalue")
  T.ok(debug.upvalueid(h1, 1) == debug.upvalueid(h2, 1), "upvaluejoin ids equal")
  x2 = 3
  T.eq(h1(), 3, "joined upvalue shares updates")
  T.eq(x1, 1, "original upvalue untouched by join")
  T.eq(debug.upvalueid(f, 10), nil, "upvalueid invalid index gives fail")
  T.err("bad argument #2 to 'upvaluejoin' (invalid upvalue index)",
        function () debug.upvaluejoin(f, 10, g, 1) end, "upvaluejoin invalid index")
  T.eq(debug.getupvalue(print, 1), nil, "C function without upvalues")
  local function envuser() return tostring end
  T.eq(debug.getupvalue(envuser, 1), "_ENV", "global access uses _ENV upvalue")
  T.eq(select(2, debug.getupvalue(envuser, 1)), _ENV, "_ENV upvalue value")
  local nlocals = {}
  local function probe()
    local p, q = 1, 2
    local i = 1
    while true do
      local nm = debug.getlocal(1, i)
      if not nm then break end
      nlocals[#nlocals + 1] = nm
      i = i + 1
    end
  end
  probe()
  T.eq(table.concat(nlocals, ","), "p,q,i", "debug.getlocal names")
end

T.section "varargs"
do
  local function count(...) return select("#", ...) end
  T.eq(count(), 0, "select # no args")
  T.eq(count(nil), 1, "select # with nil")
  T.eq(count(nil, nil, nil), 3, "select # trailing nils")
  T.eq(select(2, "a", "b", "c"), "b", "select index")
  T.eq(count(select(2, "a", "b", "c")), 2, "select returns rest")
  T.eq(select(-1, "a", "b", "c"), "c", "select negative")
  T.eq(count(select(-2, "a", "b", "c")), 2, "select negative returns tail")
  T.eq(count(select(5, "a")), 0, "select beyond end")
  T.err("bad argument #1 to 'select' (index out of range)", function () return select(-5, "a") end,
        "select negative out of range")
  T.err("bad argument #1 to 'select' (index out of range)", function () return select(0, "a") end,
        "select zero")
  local function pack(...) return table.pack(...) end
  local p = pack(1, nil, nil)
  T.eq(p.n, 3, "table.pack n with nils")
  local function outer(...)
    local a, b = ...
    local function inner(...) return select("#", ...), a, b end
    return inner(..., "x"), inner("x", ...)
  end
  local n, n2, a, b = outer(1, 2, 3)
  T.eq(n, 2, "vararg not in last position truncated to one")
  T.eq(n2, 4, "vararg in last position expands")
  T.eq(a + b, 3, "vararg assigned to locals")
  local function first(...) return (...) end
  T.eq(count(first(1, 2, 3)), 1, "parenthesized vararg truncates")
  local function mid(...) return ..., "end" end
  T.eq(count(mid(1, 2, 3)), 2, "vararg not last is truncated")
  T.eq(select(2, table.unpack({1, 2, 3}, 2, 3)), 3, "unpack with range")
  T.eq(count(table.unpack({1, 2, nil, 4})), 4, "unpack with hole at border")
  T.eq(count(table.unpack({n = 3}, 1, 3)), 3, "unpack with explicit n")
  local function sum(...)
    local s = 0
    for i = 1, select("#", ...) do s = s + (select(i, ...)) end
    return s
  end
  T.eq(sum(1, 2, 3, 4), 10, "iterate varargs with select")
  local function tail(...) return ... end
  T.eq(count(tail(table.unpack({}, 1, 250))), 250, "many varargs")
  T.eq(select(2, load("return ...")("p", "q")), "q", "main chunk receives varargs")
  local ok, msg = load("function f() return ... end")
  T.eq(msg, [[[string "function f() return ... end"]:1: cannot use '...' outside a vararg function near '...']],
       "vararg outside vararg function")
end

T.section "goto"
do
  local out = {}
  for i = 1, 5 do
    if i % 2 == 0 then goto continue end
    out[#out + 1] = i
    ::continue::
  end
  T.eq(table.concat(out, ","), "1,3,5", "continue pattern")
  local found
  for i = 1, 3 do
    for j = 1, 3 do
      if i * j == 6 then found = i .. "x" .. j; goto done end
    end
  end
  ::done::
  T.eq(found, "2x3", "goto out of nested loops")
  local n = 0
  ::top::
  n = n + 1
  if n < 5 then goto top end
  T.eq(n, 5, "backward goto loop")
  local fns = {}
  do
    local k = 0
    ::again::
    local v = k
    fns[#fns + 1] = function () return v end
    k = k + 1
    if k < 3 then goto again end
  end
  T.eq(fns[1]() + fns[3](), 2, "backward goto creates fresh locals")
  local function msg(src) return select(2, load(src, "=src")) end
  T.eq(msg("goto f; local x; ::f:: print(x)"), "src:1: <goto f> at line 1 jumps into the scope of local 'x'",
       "goto into scope of local")
  T.eq(msg("goto nowhere"), "src:1: no visible label 'nowhere' for <goto> at line 1", "goto missing label")
  T.eq(msg("::a:: ::a::"), "src:1: label 'a' already defined on line 1", "duplicate label")
  T.eq(msg("do ::a:: end goto a"), "src:1: no visible label 'a' for <goto> at line 1", "label in inner block not visible")
  T.ok(load("goto f; local x; ::f::") ~= nil, "label at end of block allows jump past local")
  T.eq(msg("for i=1,2 do end break"), "src:1: break outside loop at line 1", "break outside loop")
  T.ok(load("::l1:: do goto l1 end") ~= nil, "goto enclosing block label")
end

T.done()
