-- tablechurn.lua [N]: table churn, allocation-bound: N steps, each making
-- one table and dropping whichever lived in a random slot of a window of
-- 20,000, so that the live set stays put and the heap is freed in random
-- order. Shapes as in a server's code: records of 1-8 named fields set one
-- at a time, arrays grown one item at a time (0-64 items), constructor
-- records with nested tables, and live tables grown by a few items. Reads
-- are only what the checksum needs.
local n = tonumber(arg and arg[1]) or 1000000
local random = math.random
math.randomseed(42)  -- the same work on every build and run

local WINDOW = 20000
local fields = { "id", "name", "x", "y", "z", "hp", "mp", "state" }
local live = {}
local sum = 0
for i = 1, n do
  local kind = random(10)
  local t
  if kind <= 3 then  -- a record, field by field (the hash part rehashes)
    t = {}
    for f = 1, random(8) do t[fields[f]] = i end
  elseif kind <= 6 then  -- an array, item by item (the array part grows)
    t = {}
    for j = 1, random(0, 64) do t[j] = j end
  elseif kind <= 9 then  -- a constructor: sizes known in advance
    t = { id = i, name = "n", pos = { x = i, y = -i }, tags = { i, i + 1 } }
  else  -- grow a live table by a few items, keep it alive
    t = live[random(WINDOW)] or {}
    if #t < 256 then
      for j = 1, random(8) do t[#t + 1] = j end
    end
  end
  sum = sum + #t
  live[random(WINDOW)] = t
end
print("checksum", sum)
