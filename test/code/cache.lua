-- cache.lua: the code cache seen from Lua (Shoal only): shoal.cache's
-- functions, per-VM modes, reload, and old versions freed.
local T = require "harness"
local cache = require "shoal.cache"

local dir = T.tmpdir()
local write = T.write
local function stats () return cache.stats() end

T.section "stats"
do
  local s = stats()
  for _, k in ipairs{"entries", "bytes", "hits", "name_hits", "misses", "retired", "retired_bytes",
                     "private_copies", "strings", "string_bytes"} do
    T.eq(math.type(s[k]), "integer", k .. " is an integer")
  end
  T.eq(s.process_mode, os.getenv("SHOAL_CODECACHE") or "on", "process mode from SHOAL_CODECACHE")
  local a = dir .. "/a.lua"
  write(a, "return {v = 1}")
  local before = stats()
  dofile(a)
  local s1 = stats()
  T.eq(s1.misses, before.misses + 1, "first load is a miss")
  T.eq(s1.entries, before.entries + 1, "first load adds an entry")
  T.ok(s1.bytes > before.bytes, "entry bytes counted")
  dofile(a); loadfile(a)
  local s2 = stats()
  T.eq(s2.hits, s1.hits + 2, "later loads are hits")
  T.eq(s2.name_hits, s1.name_hits + 2, "found by their name alone (no realpath)")
  T.eq(s2.misses, s1.misses, "no more parses")
end

T.section "modes"
do
  local b = dir .. "/b.lua"
  write(b, "return 'b'")
  T.eq(cache.mode(), "on", "default VM mode is on")
  T.eq(cache.mode("off"), "on", "mode returns the previous mode")
  local s0 = stats()
  T.eq(dofile(b), "b", "off: loads work")
  T.eq(dofile(b), "b", "off: loads work again")
  local s1 = stats()
  T.eq(s1.misses + s1.hits, s0.misses + s0.hits, "off: the cache is not used")
  T.eq(cache.mode("exist"), "off", "switch to exist")
  T.eq(dofile(b), "b", "exist: uncached file loads")
  T.eq(stats().entries, s1.entries, "exist: nothing added")
  T.eq(dofile(dir .. "/a.lua").v, 1, "exist: cached file loads")
  T.eq(stats().hits, s1.hits + 1, "exist: cached file is a hit")
  T.eq(cache.mode("on"), "exist", "back to on")
  T.err("bad argument #1 to 'shoal.cache.mode' (invalid option 'sometimes')", cache.mode, "bad mode", "sometimes")
  T.err("bad argument #1 to 'shoal.cache.mode' (string expected, got table)", cache.mode, "mode not a string", {})
  T.eq(cache.mode(), "on", "VM usable after bad mode")
end

T.section "reload and clear"
do
  local c = dir .. "/c.lua"
  write(c, "return function () return 'one' end")
  local f1 = dofile(c)
  T.eq(cache.reload(c), 1, "reload drops the entry")
  T.eq(cache.reload(c), 0, "nothing left to drop")
  T.eq(stats().retired, 1, "dropped version retired, still used by f1")
  local m = stats().misses
  local f2 = dofile(c)
  T.eq(stats().misses, m + 1, "after reload, the next load parses")
  T.eq(f1(), "one", "old closure still runs")
  f1 = nil
  collectgarbage()
  T.eq(stats().retired, 0, "retired version freed with its last closure")
  T.eq(f2(), "one", "current version still runs")
  T.err("bad argument #1 to 'shoal.cache.reload' (string expected, got no value)", cache.reload, "reload without path")
  T.eq(cache.reload(dir .. "/none.lua"), 0, "reload of an unknown file")
  T.ok(cache.clear() >= 2, "clear drops every entry")
  T.eq(stats().entries, 0, "no entries after clear")
  T.eq(f2(), "one", "closures survive clear")
  f2 = nil
  collectgarbage()
  -- left retired: the files still running (this one and the harness)
  running = stats().retired
  T.ok(running <= 2, "nothing retired once unused")
end

T.section "edits"
do
  local e = dir .. "/e.lua"
  write(e, "return function () return 1 end")
  local old = dofile(e)
  write(e, "return function () return 2 + 0 end")
  local new = dofile(e)
  T.eq(old(), 1, "old closure keeps old code")
  T.eq(new(), 2, "edited file: new code")
  T.eq(stats().retired, running + 1, "old version retired while used")
  old = nil
  collectgarbage()
  T.eq(stats().retired, running, "old version freed")
  local s = stats()
  write(e, "return function () return 333 + 0 end")
  T.eq(dofile(e)(), 333, "another edit")
  T.eq(stats().misses, s.misses + 1, "edit is a miss")
  T.eq(stats().retired, running + 1, "the version 'new' uses is retired")
  new = nil
  collectgarbage()
  T.eq(stats().retired, running, "no version left behind")
end

T.section "coroutines and generational mode"
do
  local g = dir .. "/g.lua"
  write(g, "return function (n) for i = 1, n do coroutine.yield(i) end return 'done' end")
  local co = coroutine.wrap(dofile(g))
  T.eq(co(3), 1, "coroutine over cached code")
  cache.reload(g)
  collectgarbage()
  T.eq(stats().retired, running + 1, "suspended coroutine keeps its version")
  T.eq(co(), 2, "and resumes it")
  T.eq(co(), 3, "to the end")
  T.eq(co(), "done", "finished")
  co = nil
  collectgarbage("generational")
  collectgarbage()
  T.eq(stats().retired, running, "freed by a major collection")
  collectgarbage("incremental")
end

T.section "frozen closures over cached code"
do
  -- a frozen function is reached by no collector traversal: the version
  -- its code belongs to is held through the list of frozen closures
  local z = dir .. "/z.lua"
  write(z, "local n = 0 return function () n = n + 1 return 'frozen code', n end")
  local t = nogc("open", {f = dofile(z)})
  cache.reload(z)  -- retired: only the frozen closure uses it now
  collectgarbage(); collectgarbage()
  T.eq(stats().retired, running + 1, "a frozen closure keeps its version")
  T.eq(select(2, t.f()), 1, "and runs it")
  collectgarbage("generational")
  collectgarbage()
  T.eq(stats().retired, running + 1, "across a major collection too")
  collectgarbage("incremental")
  T.eq(t.f(), "frozen code", "still runs")
  nogc("close", t)
  T.eq(select(2, t.f()), 3, "given back, it runs on")
  t = nil
  collectgarbage()
  T.eq(stats().retired, running, "and its version goes with it")
end

T.section "entries, names and files"
do
  -- more files than the table's first size: every entry is found again
  local s0 = stats()
  local n = 150
  for i = 1, n do write(dir .. "/many" .. i .. ".lua", "return " .. i) end
  for i = 1, n do dofile(dir .. "/many" .. i .. ".lua") end
  local wrong = 0
  for i = 1, n do if dofile(dir .. "/many" .. i .. ".lua") ~= i then wrong = wrong + 1 end end
  local s1 = stats()
  T.eq(wrong, 0, "many files load")
  T.eq(s1.entries - s0.entries, n, "one entry each")
  T.eq(s1.misses - s0.misses, n, "one parse each")
  T.eq(s1.hits - s0.hits, n, "every second load a hit")
  -- reload takes any spelling of the path, and drops every name it was loaded by
  dofile(dir .. "//many2.lua")
  T.eq(cache.reload(dir .. "/./many1.lua"), 1, "reload by another spelling")
  T.eq(cache.reload(dir .. "/many2.lua"), 2, "reload drops the entries of every name")
  -- anything that is not a regular file is never cached
  local s2 = stats()
  T.eq(type(loadfile("/dev/null")), "function", "/dev/null loads")
  T.eq(type(loadfile("/dev/null")), "function", "and again")
  local s3 = stats()
  T.eq(s3.entries, s2.entries, "/dev/null: no entry")
  T.eq(s3.misses + s3.hits, s2.misses + s2.hits, "/dev/null: the cache is not used")
end

T.section "names that lead elsewhere"
do
  -- a deploy switches 'current' from one release to the next: the old
  -- release's entry goes with the first load under the name
  local r1, r2, cur = dir .. "/rel1", dir .. "/rel2", dir .. "/current"
  assert(os.execute("mkdir " .. r1 .. " " .. r2))
  write(r1 .. "/m.lua", "return 'release 1'")
  write(r2 .. "/m.lua", "return 'release 2'")
  assert(os.execute("ln -s " .. r1 .. " " .. cur))
  local name = cur .. "/m.lua"
  local s0 = stats()
  T.eq(dofile(name), "release 1", "release 1")
  T.eq(stats().entries, s0.entries + 1, "its entry")
  local n1 = stats().name_hits
  T.eq(dofile(name), "release 1", "release 1 again")
  T.eq(stats().name_hits, n1 + 1, "found by its name")
  assert(os.execute("ln -sfn " .. r2 .. " " .. cur))
  T.eq(dofile(name), "release 2", "after the switch, release 2")
  T.eq(stats().name_hits, n1 + 1, "the name leads to another file: not found by it")
  T.eq(stats().entries, s0.entries + 1, "release 1's entry dropped")
  local h = stats().hits
  T.eq(dofile(name), "release 2", "again")
  T.eq(stats().hits, h + 1, "a hit")
  T.eq(stats().name_hits, n1 + 2, "found by its name")
  -- release 1's file under its own name: an entry of its own, left alone
  T.eq(dofile(r1 .. "/m.lua"), "release 1", "release 1 by its own name")
  T.eq(dofile(name), "release 2", "and the switched name")
  T.eq(stats().entries, s0.entries + 2, "two names, two entries")
  -- a deleted file: the next load under its name drops its entry
  os.remove(r2 .. "/m.lua")
  T.err({pattern = "^cannot open " .. name:gsub("%p", "%%%0")}, dofile, "deleted: stock's error", name)
  T.eq(stats().entries, s0.entries + 1, "deleted: its entry dropped")
  T.eq(dofile(r1 .. "/m.lua"), "release 1", "the other name still cached")
  T.eq(stats().entries, s0.entries + 1, "(still one entry)")
end

T.section "strings"
do
  -- a VM's own strings that merely look like the constants (same lengths,
  -- other contents) do not make it run a private copy
  local mine = {}
  for i = 1, 3000 do mine[i] = string.format("zq%08dmines", i) end
  local parts = {}
  for i = 1, 100 do parts[i] = string.format("'zq%08dkonst'", i) end
  local k = dir .. "/konst.lua"
  write(k, "return {" .. table.concat(parts, ", ") .. "}")
  local s0 = stats()
  T.eq(#dofile(k), 100, "constants load")
  local s1 = stats()
  T.eq(s1.private_copies, s0.private_copies, "no private copy without a clash")
  -- (none of them is a constant of this file, which is shared code too)
  T.eq(s1.strings - s0.strings, 100 + 1, "each new constant shared once, and the chunk name")
  T.ok(s1.string_bytes - s0.string_bytes > 100 * #parts[1], "their bytes counted")
  parts[101] = string.format("'zq_%s'", "one_more")
  write(k, "return {" .. table.concat(parts, ", ") .. "}")
  T.eq(#dofile(k), 101, "edited")
  T.eq(stats().strings - s1.strings, 1, "an edit shares only the strings it did not have")
  T.eq(#mine, 3000, "(the VM's strings)")
end

T.section "out of memory"
if require("shoal").memory() then
  -- a cached file's closure is made as lua_load makes one: out of memory,
  -- loadfile returns nil and the message (it always raised before)
  local shoal = require "shoal"
  local m = dir .. "/m.lua"
  write(m, "local t = {} for i = 1, 10 do t[i] = i end return t")
  assert(loadfile(m))  -- cached now
  local raised, failed, loaded, msgs = 0, 0, 0, {}
  for head = 0, 1200, 8 do
    collectgarbage(); collectgarbage()
    shoal.setlimit(shoal.memory().inuse + head)
    local ok, f, e = pcall(loadfile, m)
    shoal.setlimit(0)
    if not ok then raised = raised + 1
    elseif f then loaded = loaded + 1
    else failed = failed + 1; msgs[e] = true end
  end
  -- (calling loadfile at all may raise, on stock too: its call frame or
  -- stack may not fit; a hit no longer raises once it runs)
  T.ok(failed > 0, "some headroom makes loadfile return nil")
  T.ok(loaded > 0, "and some is enough to load")
  local others = 0
  for e in pairs(msgs) do if e ~= "not enough memory" then others = others + 1 end end
  T.eq(others, 0, "stock's message, and no other")
  local f = assert(loadfile(m), "loads again once there is room")
  T.eq(#f(), 10, "and runs")
  -- a VM whose own string clashes with a constant gets a private copy:
  -- counted only when made
  local p = dir .. "/p.lua"
  local mine = "pclash" .. tostring(4242)
  write(p, 'local t = {} for i = 1, 20 do t[i] = "pclash4242" .. i end return t')
  assert(loadfile(p))
  local before, made = stats().private_copies, 0
  for head = 0, 2000, 16 do
    collectgarbage(); collectgarbage()
    shoal.setlimit(shoal.memory().inuse + head)
    local ok, g = pcall(loadfile, p)
    shoal.setlimit(0)
    if ok and g then made = made + 1 end
  end
  T.ok(made > 0 and made < 126, "some loads failed, some made copies")
  T.eq(stats().private_copies - before, made, "private copies counted once made")
  T.eq(#mine, 10, "(the clashing string)")
  -- a version first loaded into a VM at its limit: an emergency collection
  -- in the middle of making the closure must not drop the VM's hold on it
  -- (it did: the hold went, and the version with it once retired)
  local q = dir .. "/q.lua"
  write(q, "return 42")
  local kept, lost, wrong, tried = 0, 0, 0, 0
  local g
  for head = 0, 400, 8 do
    cache.reload(q)  -- the next load parses a new version
    g = nil
    collectgarbage(); collectgarbage()
    local base = stats().retired
    local junk = {} for i = 1, 100 do junk[i] = {} end
    junk = nil  -- garbage for the emergency collection to find
    shoal.setlimit(shoal.memory().inuse + head)
    local ok, h = pcall(loadfile, q)
    shoal.setlimit(0)
    if ok and h then
      tried = tried + 1
      g = h
      cache.reload(q)  -- retired: only this VM's hold keeps it now
      if stats().retired == base + 1 then kept = kept + 1 else lost = lost + 1 end
      if g() ~= 42 then wrong = wrong + 1 end
    end
  end
  T.ok(tried > 0, "loaded at some headroom")
  T.eq(lost, 0, "the VM's hold survives an emergency collection")
  T.eq(wrong, 0, "and the closure runs")
  -- a push cut short by the limit leaves no hold behind: the version,
  -- once retired, goes at the next collection (not at the next push)
  g = nil
  local failedpush
  for head = 0, 400, 8 do
    cache.reload(q)
    collectgarbage(); collectgarbage()
    local base = stats().retired
    collectgarbage()  -- no garbage for an emergency collection to free
    pcall(pcall, type, 1)  -- call frames made before the limit
    shoal.setlimit(shoal.memory().inuse + head)
    local ok, h, e = pcall(loadfile, q)
    shoal.setlimit(0)
    if ok and h == nil then
      cache.reload(q)
      collectgarbage(); collectgarbage()
      failedpush = stats().retired - base
      break
    end
  end
  -- (under HARDMEMTESTS every check collects, dropping the call frames
  -- made beforehand: the call fails before any push can, and this finds
  -- no failed push to look at)
  if failedpush or not os.getenv("SHOAL_TEST_HARDMEM") then
    T.eq(failedpush, 0, "a failed push holds nothing")
  end
  -- a file with a syntax error under every headroom: the message or out
  -- of memory, nothing lost (under ASan, LeakSanitizer checks the copies)
  local bad = dir .. "/bad.lua"
  write(bad, "local x = = 1 -- " .. ("padding"):rep(5))
  local msgs = 0
  for head = 0, 400, 4 do
    collectgarbage(); collectgarbage()
    shoal.setlimit(shoal.memory().inuse + head)
    local ok, h, e = pcall(loadfile, bad)
    shoal.setlimit(0)
    if ok and h == nil and e:find("unexpected symbol", 1, true) then msgs = msgs + 1 end
  end
  T.ok(msgs > 0, "the syntax error once there is room")
end

os.execute("rm -rf " .. dir)
T.done()
