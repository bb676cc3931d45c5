-- coroutines.lua: the coroutine library and yields across boundaries.
local T = require "harness"

-- the script name that positions in error messages from this file start with
local SRC = debug.getinfo(1, "S").short_src

T.section "basics"
do
  local co = coroutine.create(function (a, b)
    local c = coroutine.yield(a + b)
    local d, e = coroutine.yield(c * 2)
    return d + e, "end"
  end)
  T.eq(coroutine.status(co), "suspended", "new coroutine is suspended")
  local ok, v = coroutine.resume(co, 1, 2)
  T.ok(ok, "first resume succeeds")
  T.eq(v, 3, "arguments passed to body and yielded back")
  T.eq(select(2, coroutine.resume(co, 10)), 20, "resume value returned by yield")
  local ok3, r1, r2 = coroutine.resume(co, 4, 5)
  T.eq(r1, 9, "final return value")
  T.eq(r2, "end", "multiple return values")
  T.eq(coroutine.status(co), "dead", "finished coroutine is dead")
  local okd, msg = coroutine.resume(co)
  T.eq(okd, false, "resume dead fails")
  T.eq(msg, "cannot resume dead coroutine", "resume dead message")
  T.eq(type(co), "thread", "coroutine type")
  T.eq(select("#", coroutine.resume(coroutine.create(function () end))), 1, "empty body returns only true")
  local multi = coroutine.create(function (...) coroutine.yield(select("#", ...)); return ... end)
  T.eq(select(2, coroutine.resume(multi, nil, nil)), 2, "nil arguments counted")
  T.eq(select("#", coroutine.resume(multi)), 3, "return of varargs after resume")
end

T.section "status and running"
do
  local main, ismain = coroutine.running()
  T.eq(type(main), "thread", "running in main returns thread")
  T.eq(ismain, true, "running reports main")
  T.eq(coroutine.isyieldable(), false, "main is not yieldable")
  T.eq(coroutine.status(main), "running", "main status running")
  local co
  local inside = {}
  co = coroutine.create(function ()
    local me, im = coroutine.running()
    inside.same = me == co
    inside.ismain = im
    inside.yieldable = coroutine.isyieldable()
    inside.status = coroutine.status(co)
    inside.mainstatus = coroutine.status(main)
    local sub = coroutine.create(function () inside.outerstatus = coroutine.status(co) end)
    coroutine.resume(sub)
  end)
  coroutine.resume(co)
  T.eq(inside.same, true, "running returns current coroutine")
  T.eq(inside.ismain, false, "running in coroutine is not main")
  T.eq(inside.yieldable, true, "coroutine is yieldable")
  T.eq(inside.status, "running", "status of self is running")
  T.eq(inside.mainstatus, "normal", "resumer has status normal")
  T.eq(inside.outerstatus, "normal", "nested resumer status normal")
  T.eq(coroutine.isyieldable(co), true, "isyieldable of dead coroutine is true")
  local self_resume
  local c2
  c2 = coroutine.create(function () self_resume = {coroutine.resume(c2)} end)
  coroutine.resume(c2)
  T.eq(self_resume[2], "cannot resume non-suspended coroutine", "resume running coroutine")
  T.err("attempt to yield from outside a coroutine", coroutine.yield, "yield from main")
  T.err("bad argument #1 to 'create' (function expected, got number)", function () coroutine.create(1) end,
        "create with non function")
end

T.section "errors"
do
  local line = debug.getinfo(1, "l").currentline; local co = coroutine.create(function () error("oops") end)
  local ok, msg = coroutine.resume(co)
  T.eq(ok, false, "error in coroutine returns false")
  T.eq(msg, SRC .. ":" .. line .. ": oops", "error message with position")
  T.eq(coroutine.status(co), "dead", "coroutine dead after error")
  local obj = {}
  local co2 = coroutine.create(function () error(obj) end)
  T.eq(select(2, coroutine.resume(co2)), obj, "error object passed through")
  local w = coroutine.wrap(function () error("wrapped", 0) end)
  T.err("wrapped", w, "wrap propagates error")
  line = debug.getinfo(1, "l").currentline; local w2 = coroutine.wrap(function () error("with pos") end)
  local okw, mw = pcall(w2)
  T.eq(mw, SRC .. ":" .. line .. ": with pos", "wrap keeps position prefix")
  local w3 = coroutine.wrap(function () error({code = 7}) end)
  local _, e3 = pcall(w3)
  T.eq(e3.code, 7, "wrap propagates table error")
  local w4 = coroutine.wrap(function () return 1 end)
  w4()
  T.err("cannot resume dead coroutine", w4, "wrap dead coroutine")
  line = debug.getinfo(1, "l").currentline; local tb = coroutine.create(function () local x = nil; return x.field end)
  local _, m = coroutine.resume(tb)
  T.eq(m, SRC .. ":" .. line .. ": attempt to index a nil value (local 'x')", "runtime error in coroutine")
  T.ok(debug.traceback(tb):find("stack traceback:", 1, true) ~= nil, "traceback of dead coroutine")
end

T.section "wrap and generators"
do
  local function range(n)
    return coroutine.wrap(function () for i = 1, n do coroutine.yield(i) end end)
  end
  local s = 0
  for i in range(10) do s = s + i end
  T.eq(s, 55, "generator in for loop")
  local function permgen(a, n)
    n = n or #a
    if n <= 1 then coroutine.yield(table.concat(a)) else
      for i = 1, n do
        a[n], a[i] = a[i], a[n]
        permgen(a, n - 1)
        a[n], a[i] = a[i], a[n]
      end
    end
  end
  local perms = {}
  for p in coroutine.wrap(function () permgen({"a", "b", "c"}) end) do perms[#perms + 1] = p end
  table.sort(perms)
  T.eq(table.concat(perms, " "), "abc acb bac bca cab cba", "recursive generator permutations")
  local gen = coroutine.wrap(function (x) while true do x = coroutine.yield(x * 2) end end)
  T.eq(gen(1), 2, "wrap passes first argument")
  T.eq(gen(5), 10, "wrap passes subsequent arguments")
  local function producer()
    return coroutine.wrap(function ()
      for _, w in ipairs({"x", "y", "z"}) do coroutine.yield(w) end
      return nil
    end)
  end
  local function filter(src)
    return coroutine.wrap(function ()
      for v in src do coroutine.yield(v:upper()) end
    end)
  end
  local got = {}
  for v in filter(producer()) do got[#got + 1] = v end
  T.eq(table.concat(got), "XYZ", "producer filter pipeline")
end

T.section "yield across pcall"
do
  local co = coroutine.create(function ()
    local ok, v = pcall(function ()
      local r = coroutine.yield("in pcall")
      return r * 2
    end)
    coroutine.yield(ok, v)
    local ok2, e2 = pcall(function ()
      coroutine.yield("before error")
      error("after yield", 0)
    end)
    return ok2, e2
  end)
  T.eq(select(2, coroutine.resume(co)), "in pcall", "yield inside pcall")
  local _, ok, v = coroutine.resume(co, 21)
  T.eq(ok, true, "pcall completes after resume")
  T.eq(v, 42, "value computed after yield in pcall")
  T.eq(select(2, coroutine.resume(co)), "before error", "second yield in pcall")
  local _, ok2, e2 = coroutine.resume(co)
  T.eq(ok2, false, "pcall catches error after yield")
  T.eq(e2, "after yield", "error message after yield")
  local co2 = coroutine.create(function ()
    return xpcall(function () coroutine.yield(1); error("x", 0) end, function (m) return "handled " .. m end)
  end)
  coroutine.resume(co2)
  local _, okx, mx = coroutine.resume(co2)
  T.eq(okx, false, "xpcall across yield reports failure")
  T.eq(mx, "handled x", "xpcall handler after yield")
  local sorted = coroutine.wrap(function ()
    local t = {3, 1, 2}
    local ok3, err = pcall(table.sort, t, function (a, b) coroutine.yield() return a < b end)
    return ok3, err
  end)
  local okc, errc = sorted()
  T.eq(okc, false, "yield across C function fails")
  T.eq(errc, "attempt to yield across a C-call boundary", "yield across C-call boundary message")
end

T.section "yield across metamethods"
do
  local proxy = setmetatable({}, {
    __index = function (_, k) return coroutine.yield("need " .. k) end,
    __add = function (a, b) return coroutine.yield("add") end,
    __lt = function () return coroutine.yield("lt") end,
    __concat = function () return coroutine.yield("concat") end,
    __eq = function () return coroutine.yield("eq") end,
  })
  local co = coroutine.wrap(function ()
    local v = proxy.key
    local s = proxy + 1
    local l = proxy < setmetatable({}, getmetatable(proxy))
    local c = "a" .. proxy
    local e = proxy == setmetatable({}, getmetatable(proxy))
    return v, s, l, c, e
  end)
  T.eq(co(), "need key", "__index yields")
  T.eq(co("value"), "add", "__add yields")
  T.eq(co(100), "lt", "__lt yields")
  T.eq(co(1), "concat", "__concat yields")
  T.eq(co("cc"), "eq", "__eq yields")
  local v, s, l, c, e = co(nil)
  T.eq(v, "value", "__index result after resume")
  T.eq(s, 100, "__add result after resume")
  T.eq(l, true, "__lt result converted to boolean")
  T.eq(c, "cc", "__concat result after resume")
  T.eq(e, false, "__eq result converted to boolean")
  local iter = coroutine.wrap(function ()
    local t = setmetatable({}, {__pairs = function () return function (_, k)
      k = (k or 0) + 1
      if k <= 2 then coroutine.yield("iter" .. k); return k end
    end, nil, nil end})
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
  end)
  T.eq(iter(), "iter1", "yield inside for iterator")
  T.eq(iter(), "iter2", "yield inside for iterator second")
  T.eq(iter(), 2, "for loop completes after yields")
end

T.section "close"
do
  local co = coroutine.create(function () coroutine.yield() end)
  coroutine.resume(co)
  T.eq(coroutine.close(co), true, "close suspended coroutine")
  T.eq(coroutine.status(co), "dead", "closed coroutine is dead")
  T.eq(coroutine.close(co), true, "close dead coroutine")
  T.eq(coroutine.close(coroutine.create(print)), true, "close never started coroutine")
  local log = {}
  local co2 = coroutine.create(function ()
    local a <close> = setmetatable({}, {__close = function (_, e) log[#log + 1] = "a:" .. tostring(e) end})
    local b <close> = setmetatable({}, {__close = function (_, e) log[#log + 1] = "b:" .. tostring(e) end})
    coroutine.yield()
    log[#log + 1] = "not reached"
  end)
  coroutine.resume(co2)
  T.eq(coroutine.close(co2), true, "close with pending to-be-closed")
  T.eq(table.concat(log, ","), "b:nil,a:nil", "pending variables closed in reverse order")
  local co3 = coroutine.create(function ()
    local x <close> = setmetatable({}, {__close = function () error("close failed", 0) end})
    coroutine.yield()
  end)
  coroutine.resume(co3)
  local okc, errc = coroutine.close(co3)
  T.eq(okc, false, "close reports error from __close")
  T.eq(errc, "close failed", "close error value")
  local co4 = coroutine.create(function () error("died", 0) end)
  coroutine.resume(co4)
  local ok4, e4 = coroutine.close(co4)
  T.eq(ok4, false, "close of errored coroutine returns false")
  T.eq(e4, "died", "close of errored coroutine returns error")
  T.err("cannot close a running coroutine", function () coroutine.close(coroutine.running()) end,
        "close running main")
  local inner
  local outer = coroutine.create(function ()
    inner = coroutine.running()
    local c = coroutine.create(function () return coroutine.close(inner) end)
    return coroutine.resume(c)
  end)
  local _, okn, errn = coroutine.resume(outer)
  T.eq(okn, false, "closing normal coroutine fails")
  T.eq(errn:gsub("^[^:]+:%d+: ", ""), "cannot close a normal coroutine", "close normal coroutine message")
  local logw = {}
  local w = coroutine.wrap(function ()
    local z <close> = setmetatable({}, {__close = function (_, e) logw[#logw + 1] = e end})
    error("boom", 0)
  end)
  T.err("boom", w, "wrap error with to-be-closed")
  T.eq(logw[1], "boom", "__close receives error in coroutine")
end

T.section "misc"
do
  local depth = 0
  local function nest(n)
    if n == 0 then return "bottom" end
    local co = coroutine.create(nest)
    depth = depth + 1
    return select(2, coroutine.resume(co, n - 1))
  end
  T.eq(nest(50), "bottom", "nested coroutines 50 deep")
  T.eq(depth, 50, "nested coroutine count")
  local cos = {}
  for i = 1, 200 do
    cos[i] = coroutine.create(function (x) local y = coroutine.yield(x + 1); return y * i end)
  end
  local total = 0
  for i = 1, 200 do total = total + select(2, coroutine.resume(cos[i], i)) end
  for i = 1, 200 do total = total + select(2, coroutine.resume(cos[i], 1)) end
  T.eq(total, 40400, "many coroutines interleaved")
  T.eq(select("#", coroutine.running()), 2, "running returns two values")
  local wr = coroutine.wrap(function () return coroutine.isyieldable() end)
  T.eq(wr(), true, "wrapped body is yieldable")
end

T.done()
