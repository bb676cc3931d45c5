-- collectloop.lua [N]: a program that calls collectgarbage() in a loop, as
-- some games do once a frame: N rounds, each replacing 20,000 random
-- entries of a table of 40,000 small tables and strings, then a full
-- collection. On Shoal each full collection also trims the heap (empty
-- slabs, cached mappings, dirty pages back to the OS at once), but does
-- not walk its slabs (see README, `shoal_heaptrim`).
local n = tonumber(arg and arg[1]) or 300
local random = math.random
math.randomseed(1)  -- the same work on every build and run
local t = {}
for _ = 1, n do
  for i = 1, 20000 do t[random(40000)] = {i, tostring(i)} end
  collectgarbage()
end
local sum = 0
for _, v in pairs(t) do sum = sum + v[1] end
print("checksum", sum)
