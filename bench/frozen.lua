-- frozen.lua MODE CONFIG [N] [ITERS]: a static config of N records (about
-- 250 bytes of Lua data each, plus a string and a nested table) and a
-- mutable working set that churns. MODE: incremental | generational.
-- CONFIG: keep (plain tables), freeze (nogc("open")), none (no config).
-- Prints METRIC lines: the longest pause the churn loop sees (the largest
-- gap between its iterations, read every 64, after the first 5% of them:
-- the allocator's first reuse of the memory freed by the config's build
-- is no collector's pause), peak memory over base while
-- churning (collectgarbage("count"), which leaves frozen bytes out), the
-- churn's run time, and one full collection's time, working set alive.
local clock = require "clock"
local mode, config, n, iters = arg[1], arg[2], tonumber(arg[3]) or 1000000, tonumber(arg[4]) or 3000000
assert(mode == "incremental" or mode == "generational", "MODE: incremental or generational")
assert(config == "keep" or config == "freeze" or config == "none", "CONFIG: keep, freeze or none")
collectgarbage(mode)

local cfg
if config ~= "none" then
  cfg = {}
  local kinds = {"weapon", "armor", "potion", "scroll"}
  for i = 1, n do
    cfg[i] = {id = i, name = "item" .. i, kind = kinds[i % 4 + 1], price = i * 1.5,
              stats = {i % 97, i % 89, i % 83}}
  end
  if config == "freeze" then nogc("open", cfg) end
end

-- churn: replace entries of a working set, watch the gaps between iterations
local ring, R = {}, 10000
for i = 1, R do ring[i] = {i} end
collectgarbage()
local base = collectgarbage("count")
local peak, maxgap = base, 0
local warmup = iters // 20  -- the allocator's first reuse of freed memory
local t0 = clock.now()
local last = t0
for i = 1, iters do
  ring[i % R + 1] = {i, "s" .. (i % 1000), {i}}
  if i % 64 == 0 then
    local now = clock.now()
    if now - last > maxgap and i > warmup then maxgap = now - last end
    last = now
    local c = collectgarbage("count")
    if c > peak then peak = c end
  end
end
local churn = clock.now() - t0
if cfg then assert(cfg[n].id == n) end

-- one full collection with the working set alive: the median of three
local times = {}
for k = 1, 3 do
  local c0 = clock.now()
  collectgarbage()
  times[k] = clock.now() - c0
end
table.sort(times)

print(string.format("METRIC collect_ms %.3f ms", times[2] * 1000))
print(string.format("METRIC max_pause_ms %.3f ms", maxgap * 1000))
print(string.format("METRIC peak_over_base_mb %.2f MB", (peak - base) / 1024))
print(string.format("METRIC churn_s %.3f s", churn))
