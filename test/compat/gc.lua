-- gc.lua: collectgarbage options, modes, memory accounting, weak tables.
local T = require "harness"

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

T.section "collectgarbage options"
do
  -- the standalone interpreter (lua.c) switches the collector to generational mode
  T.eq(collectgarbage("incremental"), "generational", "standalone interpreter starts in generational mode")
  local kb = collectgarbage("count")
  T.eq(math.type(kb), "float", "count returns a float")
  T.ok(kb > 0, "count is positive")
  T.eq(select("#", collectgarbage("count")), 1, "count returns one value")
  T.eq(collectgarbage(), 0, "default option is collect and returns 0")
  T.eq(collectgarbage("collect"), 0, "collect returns 0")
  T.eq(collectgarbage("isrunning"), true, "collector running by default")
  collectgarbage("stop")
  T.eq(collectgarbage("isrunning"), false, "stop stops the collector")
  local before = collectgarbage("count")
  local keep = {}
  for i = 1, 2000 do keep[i] = {i} end
  T.ok(collectgarbage("count") > before, "memory grows while stopped")
  keep = nil
  collectgarbage("restart")
  T.eq(collectgarbage("isrunning"), true, "restart restarts the collector")
  T.eq(type(collectgarbage("step")), "boolean", "step returns a boolean")
  collectgarbage()
  T.eq(type(collectgarbage("step", 0)), "boolean", "step 0 performs a basic step")
  local finished = false
  for _ = 1, 1000 do
    if collectgarbage("step", 100) then finished = true; break end
  end
  T.ok(finished, "repeated steps finish a cycle")
  T.err("bad argument #1 to 'collectgarbage' (invalid option 'nonsense')",
        function () collectgarbage("nonsense") end, "invalid option")
  T.eq(collectgarbage("setpause", 200), 200, "deprecated setpause returns the default pause")
  T.eq(collectgarbage("setstepmul", 100), 100, "deprecated setstepmul returns the default multiplier")
end

T.section "modes"
do
  T.eq(collectgarbage("incremental"), "incremental", "incremental mode kept")
  T.eq(collectgarbage("generational"), "incremental", "switching to generational returns previous")
  T.eq(collectgarbage("generational"), "generational", "generational again returns generational")
  T.eq(collectgarbage("incremental"), "generational", "back to incremental returns previous")
  T.eq(collectgarbage("incremental", 200, 100, 13), "incremental", "incremental with parameters")
  T.eq(collectgarbage("generational", 20, 100), "incremental", "generational with parameters")
  T.eq(collectgarbage("step"), false, "step in generational mode never reports end of cycle")
  T.eq(collectgarbage("incremental"), "generational", "restore incremental")
  T.eq(collectgarbage("setpause", 200), 200, "setpause returns previous pause")
  T.eq(collectgarbage("setpause", 150), 200, "setpause returns value set before")
  T.eq(collectgarbage("setstepmul", 100), 100, "setstepmul returns previous")
  collectgarbage("setpause", 200)
end

T.section "memory"
do
  collectgarbage()
  local base = collectgarbage("count")
  local big = {}
  for i = 1, 20000 do big[i] = {i, tostring(i)} end
  local full = collectgarbage("count")
  T.ok(full > base + 500, "allocating a big table increases count")
  big = nil
  collectgarbage()
  local after = collectgarbage("count")
  T.ok(after < full, "memory decreases after dropping and collecting")
  T.ok(after - base < (full - base) / 10, "most of the memory is reclaimed")
  local before_s = collectgarbage("count")
  local s = string.rep("x", 100000)
  T.ok(collectgarbage("count") > before_s + 90, "long string accounted")
  s = nil
  collectgarbage()
  T.ok(collectgarbage("count") < after + 10, "long string freed")
end

local function weak_tests(mode)
  T.section("weak tables (" .. mode .. ")")
  -- the checks run once per mode; the mode suffix keeps their names unique
  local H = T
  local T = {
    eq = function (got, want, name) return H.eq(got, want, name .. " [" .. mode .. "]") end,
    ok = function (cond, name) return H.ok(cond, name .. " [" .. mode .. "]") end,
  }
  collectgarbage(mode)
  collectgarbage()

  local wk = setmetatable({}, {__mode = "k"})
  local strongkey = {}
  wk[strongkey] = "kept"
  wk[{}] = "dropped"
  wk["str"] = {}
  wk[1] = {}
  collectgarbage()
  T.eq(wk[strongkey], "kept", "weak key: reachable key kept")
  T.eq(count(wk), 3, "weak key: unreachable key removed")
  T.eq(type(wk.str), "table", "weak key: value of string key kept")
  T.eq(type(wk[1]), "table", "weak key: value of number key kept")

  local wv = setmetatable({}, {__mode = "v"})
  local strongval = {}
  wv[1] = strongval
  wv[2] = {}
  wv[3] = "a string value"
  wv[4] = 42
  wv[5] = function () end
  wv[6] = string.rep("y", 50)
  wv[7] = true
  collectgarbage()
  T.eq(wv[1], strongval, "weak value: reachable value kept")
  T.eq(wv[2], nil, "weak value: unreachable table removed")
  T.eq(wv[3], "a string value", "weak value: strings never removed")
  T.eq(wv[4], 42, "weak value: numbers never removed")
  T.eq(wv[5], nil, "weak value: unreachable closure removed")
  T.eq(wv[6], string.rep("y", 50), "weak value: long string never removed")
  T.eq(wv[7], true, "weak value: booleans never removed")

  local wkv = setmetatable({}, {__mode = "kv"})
  local k1, v1 = {}, {}
  wkv[k1] = {}
  wkv[{}] = v1
  wkv.x = v1
  wkv.y = {}
  collectgarbage()
  T.eq(wkv[k1], nil, "kv: entry with dead value removed")
  T.eq(wkv.x, v1, "kv: entry with live value and string key kept")
  T.eq(wkv.y, nil, "kv: dead value under string key removed")
  T.eq(count(wkv), 1, "kv: entry with dead key removed")

  local eph = setmetatable({}, {__mode = "k"})
  local live = {}
  eph[live] = {ref = live}
  local dead = {}
  eph[dead] = {ref = dead}
  dead = nil
  local a = {}
  local b = {}
  eph[a] = b
  eph[b] = {}
  a = nil
  collectgarbage()
  T.eq(eph[live].ref, live, "ephemeron: live key keeps value")
  T.eq(count(eph), 2, "ephemeron: value referring to own key does not keep it")
  T.eq(type(eph[b]), "table", "ephemeron: key reachable from a local kept")

  local chain = setmetatable({}, {__mode = "k"})
  local root = {}
  local k = root
  for _ = 1, 10 do
    local nk = {}
    chain[k] = nk
    k = nk
  end
  collectgarbage()
  T.eq(count(chain), 10, "ephemeron: chain reachable from live key kept")
  root = nil
  collectgarbage()
  T.eq(count(chain), 0, "ephemeron: chain collected after root dropped")

  local cache = setmetatable({}, {__mode = "v"})
  local function get(n)
    local v = cache[n]
    if not v then v = {n = n}; cache[n] = v end
    return v
  end
  local held = get(1)
  get(2)
  collectgarbage()
  T.eq(cache[1], held, "cache: held value kept")
  T.eq(cache[2], nil, "cache: unheld value collected")

  local wvt = setmetatable({}, {__mode = "v"})
  wvt[1] = {}
  wvt[2] = {}
  local ok = true
  collectgarbage()
  for i = 1, 2 do if wvt[i] ~= nil then ok = false end end
  T.ok(ok and #wvt == 0, "weak value array part cleared")

  local modechange = setmetatable({}, {})
  modechange[1] = {}
  getmetatable(modechange).__mode = "v"
  collectgarbage()
  T.eq(modechange[1], nil, "__mode set after setmetatable takes effect")

  local strongkeys = setmetatable({}, {__mode = "v"})
  strongkeys[{}] = 1
  collectgarbage()
  T.eq(count(strongkeys), 1, "weak value table keeps dead-looking keys with number values")

  local wkeyed = setmetatable({}, {__mode = "k"})
  local f = function () end
  wkeyed[f] = 1
  wkeyed[coroutine.create(f)] = 2
  collectgarbage()
  T.eq(count(wkeyed), 1, "weak key: closure kept, thread key collected")
  collectgarbage("incremental")
end

weak_tests("incremental")
weak_tests("generational")

T.section "generational aging"
do
  collectgarbage("generational")
  local wv = setmetatable({}, {__mode = "v"})
  local old = {}
  wv.old = old
  collectgarbage()
  collectgarbage()
  local young = {}
  wv.young = young
  old = nil
  young = nil
  collectgarbage()
  T.eq(wv.old, nil, "full collection removes old objects")
  T.eq(wv.young, nil, "full collection removes young objects")
  local keep = {}
  for i = 1, 100 do keep[i] = {i} end
  for _ = 1, 5 do collectgarbage("step") end
  T.eq(keep[100][1], 100, "live objects survive generational steps")
  collectgarbage("incremental")
end

T.done()
