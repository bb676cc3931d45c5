-- finalizers.lua: __gc finalizers and to-be-closed variables.
local T = require "harness"

-- the script name that positions in error messages from this file start with
local SRC = debug.getinfo(1, "S").short_src

-- the interpreter running this file: the lowest negative index of arg
local interp_index = -1
while arg[interp_index - 1] ~= nil do interp_index = interp_index - 1 end
-- quoted for the shell: the checkout's path may hold spaces or quotes
local interpreter = "'" .. arg[interp_index]:gsub("'", "'\\''") .. "'"

-- run a Lua script in a child interpreter (-E: ignore LUA_INIT and paths)
-- and return what it printed and its exit status; stderr is merged into
-- the output unless nostderr is set
local function child(src, nostderr)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(src)
  f:close()
  local p = assert(io.popen(string.format("%s -E %s %s", interpreter, name,
                                          nostderr and "2>/dev/null" or "2>&1")))
  local out = p:read("a")
  local _, _, code = p:close()
  os.remove(name)
  return out, code
end

T.section "gc finalizers"
do
  local log = {}
  local function obj(name) return setmetatable({}, {__gc = function () log[#log + 1] = name end}) end
  obj("a")
  collectgarbage()
  T.eq(table.concat(log, ","), "a", "finalizer runs after collect")
  log = {}
  local keep = obj("kept")
  collectgarbage()
  T.eq(#log, 0, "reachable object not finalized")
  keep = nil
  collectgarbage()
  T.eq(table.concat(log, ","), "kept", "finalized once unreachable")
  log = {}
  do
    local x1, x2, x3 = obj(1), obj(2), obj(3)
  end
  collectgarbage()
  T.eq(table.concat(log, ","), "3,2,1", "finalizers run in reverse order of marking")
  log = {}
  local a, b = obj("first"), obj("second")
  a, b = nil, nil
  collectgarbage()
  T.eq(table.concat(log, ","), "second,first", "reverse order for two objects")
  log = {}
  local mt = {}
  local late = setmetatable({}, mt)
  mt.__gc = function () log[#log + 1] = "late" end
  late = nil
  collectgarbage()
  T.eq(#log, 0, "__gc added after setmetatable is not active")
  local mt2 = {__gc = true}
  local early = setmetatable({}, mt2)
  mt2.__gc = function () log[#log + 1] = "early" end
  early = nil
  collectgarbage()
  T.eq(table.concat(log, ","), "early", "__gc placeholder at setmetatable time enables later function")
  log = {}
  local nonfunc = setmetatable({}, {__gc = 42})
  nonfunc = nil
  T.ok(pcall(collectgarbage), "error calling a non function __gc does not propagate")
  local got
  local self_obj = setmetatable({tag = "me"}, {__gc = function (o) got = o.tag end})
  self_obj = nil
  collectgarbage()
  T.eq(got, "me", "finalizer receives the object")
end

T.section "resurrection"
do
  local saved
  local count = 0
  local o = setmetatable({value = 99}, {__gc = function (x) count = count + 1; saved = x end})
  o = nil
  collectgarbage()
  T.eq(count, 1, "finalizer ran")
  T.eq(saved.value, 99, "resurrected object keeps its fields")
  saved = nil
  collectgarbage()
  T.eq(count, 1, "finalizer does not run twice")
  local again = 0
  local r = setmetatable({}, {__gc = function (x) again = again + 1; if again == 1 then setmetatable(x, getmetatable(x)) end end})
  r = nil
  collectgarbage()
  collectgarbage()
  T.eq(again, 2, "setmetatable in finalizer re-registers it")
  local weak = setmetatable({}, {__mode = "v"})
  local wk = setmetatable({}, {__mode = "k"})
  local resurrect
  local obj = setmetatable({}, {__gc = function (x) resurrect = x end})
  weak[1] = obj
  wk[obj] = "key"
  obj = nil
  collectgarbage()
  T.eq(weak[1], nil, "weak value cleared before finalizer runs")
  T.eq(wk[resurrect], "key", "weak key kept for resurrected object")
  resurrect = nil
end

T.section "gc errors"
do
  local ran = false
  local bad = setmetatable({}, {__gc = function () error("gc failure") end})
  local good = setmetatable({}, {__gc = function () ran = true end})
  bad, good = nil, nil
  T.ok(pcall(collectgarbage), "error in __gc does not propagate")
  T.ok(ran, "other finalizers still run after an error")
  local out = child([[
    warn("@on")
    setmetatable({}, {__gc = function () error("boom in gc", 0) end})
    collectgarbage()
    print("still alive")
  ]])
  T.eq(out, "Lua warning: error in __gc (boom in gc)\nstill alive\n", "error in __gc produces a warning")
  local out2 = child([[
    warn("@on")
    setmetatable({}, {__gc = function () error({}) end})
    collectgarbage()
    print("alive")
  ]])
  T.eq(out2, "Lua warning: error in __gc (error object is not a string)\nalive\n",
       "non string error in __gc warning")
  local out3 = child([[
    setmetatable({}, {__gc = function () error("silent") end})
    collectgarbage()
    print("warnings off by default")
  ]])
  T.eq(out3, "warnings off by default\n", "warnings are off by default")
end

T.section "finalizers at close"
do
  local out, code = child([[
    local names = {"one", "two", "three"}
    for _, n in ipairs(names) do
      _G[n] = setmetatable({}, {__gc = function () io.write("gc ", n, "\n") end})
    end
    print("end of script")
  ]])
  T.eq(out, "end of script\ngc three\ngc two\ngc one\n", "pending finalizers run at lua_close in reverse order")
  T.eq(code, 0, "child exit status")
  local out2 = child([[
    x = setmetatable({}, {__gc = function () print("finalized") end})
    os.exit(0, true)
  ]], true)
  T.eq(out2, "finalized\n", "os.exit with close runs finalizers")
  local out3 = child([[
    x = setmetatable({}, {__gc = function () print("finalized") end})
    io.stdout:flush()
    os.exit(0)
  ]], true)
  T.eq(out3, "", "os.exit without close skips finalizers")
  local out4, code4 = child([[
    x = setmetatable({}, {__gc = function () print("finalized after error") end})
    error("top level")
  ]])
  T.ok(out4:find("top level", 1, true) ~= nil and out4:find("finalized after error\n$") ~= nil,
       "finalizers run after uncaught error")
  T.eq(code4, 1, "uncaught error exit status")
  local out5 = child([[
    local t = setmetatable({}, {__gc = function ()
      local s = setmetatable({}, {__gc = function () print("inner") end})
      print("outer")
    end})
  ]])
  T.eq(out5, "outer\n", "finalizers set while closing the state are not registered")
end

T.section "close basics"
do
  local log = {}
  local function closer(name)
    return setmetatable({}, {__close = function (o, e) log[#log + 1] = name .. ":" .. tostring(e) end})
  end
  do
    local a <close> = closer("a")
    local b <close> = closer("b")
    local c <close> = closer("c")
    log[#log + 1] = "body"
  end
  T.eq(table.concat(log, " "), "body c:nil b:nil a:nil", "closed in reverse order at block end")
  log = {}
  local ok, err = pcall(function ()
    local x <close> = closer("x")
    local y <close> = closer("y")
    error("fail", 0)
  end)
  T.eq(table.concat(log, " "), "y:fail x:fail", "closed on error with error object")
  T.eq(err, "fail", "original error preserved")
  log = {}
  for i = 1, 3 do
    local v <close> = closer("i" .. i)
    if i == 2 then break end
  end
  T.eq(table.concat(log, " "), "i1:nil i2:nil", "closed on each iteration and on break")
  log = {}
  local function ret()
    local r <close> = closer("r")
    return "value", "second"
  end
  local v1, v2 = ret()
  T.eq(table.concat(log, " "), "r:nil", "closed on return")
  T.eq(v1 .. v2, "valuesecond", "return values preserved")
  log = {}
  do
    local g <close> = closer("g")
    goto out
  end
  ::out::
  T.eq(table.concat(log, " "), "g:nil", "closed on goto out of block")
  log = {}
  do
    local n <close> = nil
    local f <close> = false
    local z <close> = closer("z")
  end
  T.eq(table.concat(log, " "), "z:nil", "nil and false are allowed and ignored")
  T.err("variable 'bad' got a non-closable value", function () local bad <close> = {} end,
        "table without __close")
  T.err("variable 'num' got a non-closable value", function () local num <close> = 42 end,
        "number is not closable")
  log = {}
  local badline
  local okk = pcall(function ()
    local first <close> = closer("first")
    badline = debug.getinfo(1, "l").currentline; local second <close> = {}
  end)
  T.eq(#log, 1, "earlier variable closed when later one is invalid")
  T.eq(log[1], "first:" .. SRC .. ":" .. badline .. ": variable 'second' got a non-closable value",
       "earlier variable receives the non-closable error")
end

T.section "close errors"
do
  local log = {}
  local function closer(name, fail)
    return setmetatable({}, {__close = function (_, e)
      log[#log + 1] = name .. ":" .. tostring(e)
      if fail then error(fail, 0) end
    end})
  end
  local ok, err = pcall(function ()
    local a <close> = closer("a")
    local b <close> = closer("b", "b failed")
    return "unused"
  end)
  T.eq(ok, false, "error in __close makes the call fail")
  T.eq(err, "b failed", "error from __close is raised")
  T.eq(table.concat(log, " "), "b:nil a:b failed", "later closers see the error from earlier ones")
  log = {}
  local ok2, err2 = pcall(function ()
    local a <close> = closer("a", "a failed")
    local b <close> = closer("b", "b failed")
    error("original", 0)
  end)
  T.eq(err2, "a failed", "last error in closing replaces the original")
  T.eq(table.concat(log, " "), "b:original a:b failed", "each closer receives the current error")
  log = {}
  local ok3, err3 = pcall(function ()
    local a <close> = setmetatable({}, {__close = function () error({code = 5}) end})
  end)
  T.eq(err3.code, 5, "error object from __close")
  local closed_mm_removed = pcall(function ()
    local mt = {__close = function () end}
    local x <close> = setmetatable({}, mt)
    mt.__close = nil
  end)
  T.eq(closed_mm_removed, false, "removing __close after declaration raises an error")
  local _, err4 = pcall(function ()
    local mt = {__close = function () end}
    local x <close> = setmetatable({}, mt)
    mt.__close = nil
  end)
  T.ok(err4:find("metamethod 'close'", 1, true) ~= nil, "missing __close at exit mentions metamethod close")
end

T.section "close in for loops"
do
  local log = {}
  local function iter(n)
    local i = 0
    local closing = setmetatable({}, {__close = function () log[#log + 1] = "closed" end})
    return function () i = i + 1; if i <= n then return i end end, nil, nil, closing
  end
  local sum = 0
  for i in iter(3) do sum = sum + i end
  T.eq(sum, 6, "loop with closing value runs")
  T.eq(table.concat(log, ","), "closed", "closing value closed at loop end")
  log = {}
  for i in iter(10) do if i == 2 then break end end
  T.eq(table.concat(log, ","), "closed", "closing value closed on break")
  log = {}
  pcall(function () for i in iter(10) do error("in loop") end end)
  T.eq(table.concat(log, ","), "closed", "closing value closed on error")
  log = {}
  local function early() for i in iter(10) do return i end end
  T.eq(early(), 1, "return from loop")
  T.eq(table.concat(log, ","), "closed", "closing value closed on return")
end

T.section "const"
do
  local function compile(src) return select(2, load(src, "=c")) end
  T.eq(compile("local x <const> = 1; x = 2"), "c:1: attempt to assign to const variable 'x'", "assign to const")
  T.eq(compile("local x <close> = nil; x = 2"), "c:1: attempt to assign to const variable 'x'",
       "close variables are const")
  T.eq(compile("local x <const> = 1; return function () x = 1 end"),
       "c:1: attempt to assign to const variable 'x'", "assign to const upvalue")
  T.eq(compile("local a <close>, b <close> = 1, 2"), "c:1: multiple to-be-closed variables in local list",
       "two close variables in one local statement")
  T.eq(compile("local x <const>"), nil, "const without value compiles")
  local x <const> = 10
  local y <const> = "str"
  T.eq(x * 2, 20, "const value usable")
  T.eq(load("local k <const> = 3; local function f() return k end; return f()")(), 3, "const captured")
  T.eq(compile("local x <const> = 1; local x = 2; x = 3"), nil, "shadowing const with plain local")
  T.eq(y, "str", "string const")
end

T.done()
