-- frozen.lua: nogc (Shoal only): freezing, read-only enforcement, refusals
-- with their paths, sharing between graphs, weak tables, functions with
-- upvalues across collections, coroutines, both collector modes.
local T = require "harness"

local mode = ...  -- "incremental" or "generational"
-- SAN=hardmem collects at every allocation: there, smaller sizes
local SCALE = os.getenv("SHOAL_TEST_HARDMEM") and 0.01 or 1
collectgarbage(mode or "incremental")
T.section(mode or "incremental")

local function check_err (want, f, name, ...)
  T.err({pattern = "^[^:]*:%d+: " .. want:gsub("[%(%)%.%[%]%-%+%*%?%^%$]", "%%%0") .. "$"}, f, name, ...)
end

T.section "nogc basics"
do
  local n0, c0 = nogc("len"), nogc("count")
  T.eq(math.type(n0), "integer", "len is an integer")
  T.eq(math.type(c0), "float", "count is a float")
  local t = {a = 1, b = {c = "x"}}
  T.eq(nogc("open", t), t, "open returns t")
  T.eq(nogc("isfrozen", t), true, "t is frozen")
  T.eq(nogc("isfrozen", t.b), true, "nested table is frozen")
  T.eq(nogc("isfrozen", 1), false, "numbers are not")
  T.eq(nogc("isfrozen", {}), false, "a fresh table is not")
  T.ok(nogc("len") >= n0 + 2, "len counts frozen objects")
  T.ok(nogc("count") > c0, "count grows")
  T.eq(t.a + #t.b.c, 2, "frozen data reads")
  T.eq(nogc("close", t), t, "close returns t")
  T.eq(nogc("isfrozen", t), false, "closed: not frozen")
  T.eq(nogc("len"), n0, "len back")
  t.a = 2
  t.b.c = "y"
  T.eq(t.a .. t.b.c, "2y", "closed graph is writable again")
end

T.section "nogc errors"
do
  T.err("bad argument #1 to 'nogc' (invalid option 'freeze')", nogc, "bad option", "freeze", {})
  T.err("bad argument #2 to 'nogc' (table expected, got number)", nogc, "open a number", "open", 1)
  T.err("bad argument #2 to 'nogc' (table expected, got no value)", nogc, "open nothing", "open")
  local t = nogc("open", {x = {}})
  T.err("bad argument #2 to 'nogc' (table is already frozen)", nogc, "open twice", "open", t)
  T.err("bad argument #2 to 'nogc' (table is already frozen)", nogc, "open a frozen subtable", "open", t.x)
  T.err("bad argument #2 to 'nogc' (not the root of a frozen graph)", nogc, "close a subtable", "close", t.x)
  T.err("bad argument #2 to 'nogc' (not the root of a frozen graph)", nogc, "close unfrozen", "close", {})
  nogc("close", t)
  T.err("bad argument #2 to 'nogc' (not the root of a frozen graph)", nogc, "close twice", "close", t)
  T.err("bad argument #2 to 'nogc' (value expected)", nogc, "isfrozen nothing", "isfrozen")
end

T.section "writes raise"
do
  cfg = nogc("open", {name = "n", list = {3, 1, 2}, sub = {k = 1}})
  local cfg = cfg
  check_err("attempt to modify a frozen table (upvalue 'cfg')", function () cfg.name = "m" end, "field assignment")
  check_err("attempt to modify a frozen table (upvalue 'cfg')", function () cfg.new = 1 end, "new field")
  check_err("attempt to modify a frozen table (field 'list')", function () cfg.list[1] = 0 end, "array element")
  check_err("attempt to modify a frozen table (field 'list')", function () cfg.list[4] = 0 end, "array append")
  check_err("attempt to modify a frozen table (local 'c')", function () local c = cfg; c.name = 1 end, "a local")
  check_err("attempt to modify a frozen table (global 'cfg')", function () _ENV.cfg.name = 1 end, "a global")
  check_err("attempt to modify a frozen table (upvalue 'cfg')", function () local k = "name"; cfg[k] = 1 end, "computed key")
  check_err("attempt to modify a frozen table (field 'cfg')", function () _G.cfg.name = 1 end, "through a global")
  check_err("attempt to modify a frozen table (upvalue 'cfg')", function () cfg[1.5] = 1 end, "float key")
  -- keys already present, from registers (the fast paths of SETTABLE)
  check_err("attempt to modify a frozen table (field 'list')", function () local i = 1; cfg.list[i] = 0 end, "integer key in a register")
  check_err("attempt to modify a frozen table (field 'list')", function () local i = 2.0; cfg.list[i] = 0 end, "float-valued integer key in a register")
  check_err("attempt to modify a frozen table (upvalue 'cfg')", function () cfg.name = nil end, "assigning nil")
  check_err("attempt to modify a frozen table", function () rawset(cfg, "name", 1) end, "rawset")
  check_err("attempt to modify a frozen table", function () table.insert(cfg.list, 9) end, "table.insert")
  check_err("attempt to modify a frozen table", function () table.insert(cfg.list, 1, 9) end, "table.insert at 1")
  check_err("attempt to modify a frozen table", function () table.remove(cfg.list) end, "table.remove")
  check_err("attempt to modify a frozen table", function () table.move(cfg.list, 1, 2, 2) end, "table.move")
  check_err("attempt to modify a frozen table", function () table.move({1}, 1, 1, 1, cfg.list) end, "table.move into")
  check_err("attempt to modify a frozen table", function () table.sort(cfg.list) end, "table.sort")
  check_err("attempt to modify a frozen table", function () setmetatable(cfg, {}) end, "setmetatable")
  check_err("attempt to modify a frozen table", function () debug.setmetatable(cfg, nil) end, "debug.setmetatable")
  T.eq(cfg.name .. table.concat(cfg.list, ","), "n3,1,2", "nothing changed")
  T.eq(table.unpack(cfg.list, 2), 1, "reads work")
  local n = 0
  for k in pairs(cfg) do n = n + 1 end
  T.eq(n, 3, "pairs works")
  T.eq(#cfg.list, 3, "length works")
  T.eq(next(cfg.sub), "k", "next works")
  nogc("close", cfg)
  cfg = nil
end

T.section "refusals"
do
  local n0 = nogc("len")
  local function refused (want, t, name)
    local before = nogc("len")
    T.err({pattern = "cannot freeze " .. want:gsub("[%(%)%.%[%]%-%+%*%?%^%$]", "%%%0") .. "$"}, nogc, name, "open", t)
    T.eq(nogc("len"), before, name .. ": nothing frozen")
    T.eq(nogc("isfrozen", t), false, name .. ": root not frozen")
  end
  local deep = {items = {1, 2, {icon = io.stdout}}}
  refused("userdata at t.items[3].icon", deep, "userdata")
  T.eq(nogc("isfrozen", deep.items[3]), false, "userdata: nested not frozen")
  deep.items[1] = "writable"
  T.eq(deep.items[1], "writable", "userdata: graph still writable")
  refused("a thread at t.co", {co = coroutine.create(print)}, "thread")
  refused("a C function with upvalues at t.iter", {iter = string.gmatch("a", "a")}, "C closure")
  refused("a table with __gc at t.obj", {obj = setmetatable({}, {__gc = function () end})}, "__gc")
  refused("a table with __mode at t[\"weak cache\"]", {["weak cache"] = setmetatable({}, {__mode = "k"})}, "__mode")
  refused("a table with __gc at t", setmetatable({}, {__gc = function () end}), "__gc root")
  refused("userdata at t.a(metatable).__index", {a = setmetatable({}, {__index = io.stderr})}, "in a metatable")
  refused("userdata at t(key)", {[io.stdout] = 1}, "userdata key")
  refused("userdata at t[true][2]", {[true] = {1, io.stdout}}, "boolean key")
  T.eq(nogc("len"), n0, "refusals froze nothing")
  -- light C functions are fine
  local ok = nogc("open", {print = print, len = string.len})
  T.eq(ok.len("abc"), 3, "light C functions freeze")
  nogc("close", ok)
end

T.section "graphs"
do
  local t = {}
  t.self = t
  t.a = {back = t, list = {t, t}}
  nogc("open", t)
  T.eq(t.a.back.self.a.list[2], t, "cycles")
  nogc("close", t)
  -- deep graphs do not overflow the C stack
  local chain = {}
  local c = chain
  for i = 1, math.floor(200000 * SCALE) do c.next = {i = i}; c = c.next end
  nogc("open", chain)
  T.eq(chain.next.next.i, 2, "deep chain frozen")
  nogc("close", chain)
  local deepbad = {}
  c = deepbad
  for i = 1, math.floor(100000 * SCALE) do c.next = {}; c = c.next end
  c.u = io.stdout
  T.err({pattern = "^cannot freeze userdata at t%.next%.next[.next]*%.%.%.[.next]*%.next%.u$"}, nogc,
        "deep refusal path: its start and its end", "open", deepbad)
  -- a shared subgraph between two graphs
  local S = {v = "shared"}
  local A = nogc("open", {s = S})
  local B = nogc("open", {s = S, own = {}})
  T.eq(nogc("isfrozen", S), true, "shared part frozen")
  nogc("close", A)
  T.eq(nogc("isfrozen", S), true, "closing A keeps what B uses frozen")
  T.eq(nogc("isfrozen", A), false, "A itself thawed")
  collectgarbage()
  T.eq(B.s.v, "shared", "B still reads it")
  nogc("close", B)
  T.eq(nogc("isfrozen", S), false, "closing B thaws it")
  S.v = "mine"
  T.eq(S.v, "mine", "writable after both closed")
  -- the other order
  local S2 = {v = 1}
  local A2 = nogc("open", {s = S2})
  local B2 = nogc("open", {s = S2})
  nogc("close", B2)
  T.eq(nogc("isfrozen", S2), true, "closing B first: A's part stays")
  nogc("close", A2)
  T.eq(nogc("isfrozen", S2), false, "then A's")
end

T.section "weak tables"
do
  local fk = nogc("open", {"key"})
  local fv = nogc("open", {"value"})
  local wk = setmetatable({}, {__mode = "k"})
  local wv = setmetatable({}, {__mode = "v"})
  wk[fk] = true
  wv[1] = fv
  fk, fv = nil, nil  -- only the weak tables refer to them
  collectgarbage()
  collectgarbage()
  local kk = next(wk)
  T.ok(kk ~= nil and kk[1] == "key", "weak key table keeps a frozen key")
  T.ok(wv[1] ~= nil and wv[1][1] == "value", "weak value table keeps a frozen value")
  nogc("close", kk)
  nogc("close", wv[1])
  kk = nil
  collectgarbage()
  T.eq(next(wk), nil, "thawed and unreachable: collected from the weak table")
end

T.section "metatables"
do
  local mt = {__index = function (t, k) return "default " .. k end}
  local t = setmetatable({x = 1}, mt)
  nogc("open", t)
  T.eq(nogc("isfrozen", mt), true, "metatable frozen with its table")
  T.eq(t.y, "default y", "__index function on frozen table")
  local base = {greet = "hi"}
  local proto = nogc("open", setmetatable({}, {__index = base, __newindex = function () error("no") end}))
  T.eq(proto.greet, "hi", "__index table")
  check_err("attempt to modify a frozen table (upvalue 'proto')", function () proto.z = 1 end, "__newindex does not open a frozen table")
  -- a frozen table as the __newindex of an ordinary one: the write reaches
  -- it through the metamethod, and raises whether the key is there or not
  local fz = nogc("open", {x = 1})
  local o = setmetatable({}, {__newindex = fz})
  check_err("attempt to modify a frozen table", function () o.x = 2 end, "__newindex table, key present")
  check_err("attempt to modify a frozen table", function () local k = "x"; o[k] = 2 end, "__newindex table, key in a register")
  check_err("attempt to modify a frozen table", function () o.y = 2 end, "__newindex table, new key")
  T.eq(fz.x, 1, "__newindex table: unchanged")
  T.eq(rawget(o, "x"), nil, "__newindex table: nothing written to the ordinary table")
  nogc("close", fz)
  local fmt = nogc("open", {__index = {kind = "frozen mt"}, __newindex = function (t, k, v) rawset(t, k, v .. "!") end})
  local obj = setmetatable({}, fmt)
  T.eq(obj.kind, "frozen mt", "ordinary table with a frozen metatable")
  obj.a = "set"
  T.eq(obj.a, "set!", "its __newindex writes the ordinary table")
  nogc("close", t); nogc("close", proto); nogc("close", fmt)
end

T.section "functions"
do
  local count = 0
  local log = {}
  local api = {}
  function api.bump (n) count = count + n; log[#log + 1] = {n}; return count end
  function api.reset () log = {}; count = 0 end
  function api.setenv (e) local _ENV = e; return _ENV end
  local counter = (function ()
    local up = {}
    return function (v) if v then up = {v} end return up[1] end
  end)()
  api.counter = counter
  nogc("open", api)
  T.eq(nogc("isfrozen", api.bump), true, "Lua function frozen")
  for i = 1, 200 do
    api.bump(1)
    api.counter({i})  -- a fresh table only the upvalue refers to
    if i % 10 == 0 then collectgarbage("step", 100) end
    if i % 50 == 0 then collectgarbage() end
  end
  T.eq(count, 200, "upvalue assigned across collections")
  T.eq(#log, 200, "upvalue table grown across collections")
  T.eq(log[200][1], 1, "values reached only through upvalues survive")
  T.eq(api.counter()[1], 200, "latest upvalue value survives")
  api.reset()
  collectgarbage()
  T.eq(#log, 0, "upvalue replaced")
  T.eq(api.setenv({x = 1}).x, 1, "a local _ENV")
  local g = nogc("open", {f = function () frozen_global = 42 end})
  g.f()
  T.eq(frozen_global, 42, "frozen function assigns a global through _ENV")
  frozen_global = nil
  nogc("close", api)
  nogc("close", g)
  T.eq(api.bump(1), 1, "thawed function keeps its upvalues")
end

T.section "coroutines"
do
  local data = {}
  for i = 1, 1000 do data[i] = {id = i, name = "n" .. i} end
  nogc("open", data)
  local cos = {}
  for c = 1, 4 do
    cos[c] = coroutine.wrap(function ()
      local sum = 0
      for i = c, #data, 4 do
        sum = sum + data[i].id + #data[i].name
        local junk = {}  -- churn
        for j = 1, 5 do junk[j] = {j} end
        if i % 40 == c then coroutine.yield(sum) end
      end
      return sum
    end)
  end
  local total, done = 0, 0
  while done < 4 do
    for c = 1, 4 do
      if cos[c] then
        local s = cos[c]()
        collectgarbage("step", 50)
        if coroutine.status and s and s > 0 then total = s end
      end
    end
    done = done + 1
  end
  T.ok(total > 0, "coroutines read frozen data while collecting")
  nogc("close", data)
end

T.section "string table"
do  -- frozen strings leave the string table, which shrinks at once
  local n = math.floor(200000 * SCALE)
  local t = {}
  for i = 1, n do t[i] = "frozen string " .. i end
  collectgarbage()
  local before, fz0 = collectgarbage("count"), nogc("count")
  nogc("open", t)
  local after, fz = collectgarbage("count"), nogc("count") - fz0
  -- the frozen bytes leave the count, and the table of 'n' string slots
  -- (8 bytes each) goes down to a few
  T.ok(before - after - fz >= n * 8 / 1024 * 0.75,
       string.format("string table shrunk (%.0f KB beyond the frozen %.0f KB)",
                     before - after - fz, fz))
  T.eq(t[n], "frozen string " .. n, "frozen strings read")
  T.eq(("frozen string " .. n) == t[n], true, "and compare equal to new ones")
  nogc("close", t)
  T.eq(("frozen string " .. 1) == t[1], true, "and after close")
end

T.section "more refusals and paths"
do
  local function refused (want, t, name)
    local before = nogc("len")
    T.err({pattern = "cannot freeze " .. want:gsub("[%(%)%.%[%]%-%+%*%?%^%$]", "%%%0") .. "$"}, nogc, name, "open", t)
    T.eq(nogc("len"), before, name .. ": nothing frozen")
  end
  -- a table once given a __gc is marked for finalization, even without it now
  local obj = setmetatable({}, {__gc = function () end})
  getmetatable(obj).__gc = nil
  refused("a table with a finalizer at t.obj", {obj = obj}, "marked for finalization")
  -- path steps as Lua would write them
  refused("userdata at t[\"end\"]", {["end"] = io.stdout}, "reserved word key")
  refused("userdata at t[1.5]", {[1.5] = io.stdout}, "float key")
  local long = "a key " .. string.rep("k", 50)
  refused("userdata at t[\"a key " .. string.rep("k", 34) .. "\"]", {[long] = io.stdout}, "long key cut at 40")
end

T.section "accounting"
do
  -- frozen bytes leave the collector's count, and come back on close
  local function settle ()  -- until collections shrink nothing more (the string table)
    for i = 1, 30 do
      local c = collectgarbage("count")
      collectgarbage()
      if collectgarbage("count") >= c then break end
    end
  end
  local t = {}
  for i = 1, 20000 do t[i * 1.5] = true end  -- a hash part, no strings
  settle()
  local c0, f0 = collectgarbage("count"), nogc("count")
  nogc("open", t)
  local c1, f1 = collectgarbage("count"), nogc("count")
  T.ok(f1 - f0 > 20000 * 24 / 1024, string.format("frozen size counts the hash part (%.0f KB)", f1 - f0))
  T.ok(math.abs((c0 - c1) - (f1 - f0)) < 4, string.format("the collector's count lost as much (%.1f KB, %.1f KB)", c0 - c1, f1 - f0))
  nogc("close", t)
  settle()
  local c2 = collectgarbage("count")
  T.ok(math.abs(c2 - c0) < 4, string.format("and has it back after close (%.1f KB, %.1f KB)", c2, c0))
  T.eq(nogc("count"), f0, "nogc count back")
  -- objects other graphs still use stay frozen, and counted
  local S = {v = "shared"}
  local n0 = nogc("len")
  local A = nogc("open", {s = S})
  local B = nogc("open", {s = S})
  nogc("close", A)
  T.eq(nogc("len"), n0 + 2, "B and the part it shares")
  nogc("close", B)
  T.eq(nogc("len"), n0, "nothing after both")
end
T.section "freezing between young collections"
do
  -- the newest objects a young collection left (where the generations'
  -- lists start) frozen: those lists must not start in the frozen graph
  collectgarbage("generational")
  local thawed, wrong = 0, 0
  for trial = 1, 50 do
    local t = {}
    for i = 1, 200 do t[i] = {i} end
    t.last = {}
    collectgarbage("step", 0)  -- a young collection: the newest objects survive
    nogc("open", t)
    for k = 1, 3 do
      local junk = {}
      for j = 1, 50 do junk[j] = {j} end
      collectgarbage("step", 0)
    end
    for i = 1, #t do
      if not nogc("isfrozen", t[i]) then thawed = thawed + 1 end
      if t[i][1] ~= i then wrong = wrong + 1 end
    end
    nogc("close", t)
  end
  collectgarbage()
  T.eq(thawed, 0, "young collections leave the frozen objects alone")
  T.eq(wrong, 0, "the graphs intact")
  collectgarbage(mode or "incremental")
end

T.section "review fixes"
do
  -- a refused freeze of a table gray at that moment (written during a
  -- cycle) restores its mark: it crashed (no mark recorded), or past 256
  -- objects left garbage marks that refused every later freeze
  collectgarbage("incremental")
  local junk = {}
  for i = 1, math.max(200, 20000 * SCALE) do junk[i] = {i} end
  local root = {}
  for i = 1, 600 do root[i] = {i, "s" .. i} end
  root.z = {u = io.stdout}
  collectgarbage()
  local wrong = 0
  for trial = 1, 50 do
    collectgarbage("step", 0)
    root.y = {}  -- gray again (a back barrier)
    local ok, err = pcall(nogc, "open", root)
    if ok or not err:find("cannot freeze userdata at t.z.u", 1, true) then wrong = wrong + 1 end
  end
  T.eq(wrong, 0, "a gray root refused, with its path, every time")
  root.z = nil
  T.eq(pcall(nogc, "open", root), true, "and frozen once fine")
  T.eq(root[600][2], "s600", "intact")
  nogc("close", root)
  junk = nil
  collectgarbage(mode or "incremental")
end
do
  -- an entry removed just before freezing: its key must not outlive the
  -- table's node (it was freed under it)
  local t = {}
  do
    local k = string.rep("k", 50) .. os.clock()
    t[k] = true
    t[k] = nil  -- the only node keeps the key: every lookup compares it
  end
  nogc("open", t)
  collectgarbage(); collectgarbage()
  local junk = {}
  for i = 1, 1000 do junk[i] = string.rep("z", 50) .. i end
  T.eq(t[string.rep("q", 50)], nil, "a lookup passes the removed key")
  local n = 0
  for k in pairs(t) do n = n + 1 end
  T.eq(n, 0, "next skips it")
  nogc("close", t)
end
do
  -- a function given back by nogc("close") keeps its upvalues alive in
  -- generational mode (its young upvalue was freed after two young
  -- collections)
  collectgarbage("generational")
  local function make ()
    local box = {v = 1}
    return {f = function (x) if x then box = x end return box end}
  end
  local t = make()
  nogc("open", t)
  nogc("close", t)
  collectgarbage("step", 0)
  collectgarbage("step", 0)
  local junk = {}
  for i = 1, 100 do junk[i] = {i} end
  T.eq(t.f().v, 1, "the upvalue survives young collections")
  t.f({v = 2})
  collectgarbage()
  T.eq(t.f().v, 2, "and can be set again")
  collectgarbage(mode or "incremental")
end
do
  -- a table frozen while its constructor fills it (found through the
  -- debug library): the constructor's store raises, it no longer writes
  local function grab ()
    for i = 1, 20 do
      local name, v = debug.getlocal(2, i)
      if name == nil then break end
      if type(v) == "table" and v.tag == "ctor" and not nogc("isfrozen", v) then
        nogc("open", v)
        return 1
      end
    end
    return 1
  end
  local ok, err = pcall(function ()
    return {tag = "ctor", grab(), {}, {}, string.rep("x", 50) .. os.clock()}
  end)
  T.eq(ok, false, "the constructor's store into a frozen table raises")
  T.ok(tostring(err):find("attempt to modify a frozen table", 1, true), "with the frozen-table error")
  -- C functions are never frozen (light ones read as frozen: machine code)
  local bad = 0
  for _, lib in ipairs{string, table, math, debug, os, io, coroutine, utf8, _G} do
    for _, f in pairs(lib) do
      if type(f) == "function" and nogc("isfrozen", f) then bad = bad + 1 end
    end
  end
  T.eq(bad, 0, "no C function reads as frozen")
end

T.done()
