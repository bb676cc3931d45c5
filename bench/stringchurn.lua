-- stringchurn.lua [N]: string churn, allocation-bound: N steps, each making
-- one string and dropping whichever lived in a random slot of a window of
-- 20,000. Sizes as in a server's traffic: short strings made by
-- concatenation and formatting (new each time: interned, then collected),
-- medium ones of tens to hundreds of bytes (repetition, a joined list), and
-- now and then a long one of 4-64 KB (a message, a file's worth).
local n = tonumber(arg and arg[1]) or 1000000
local random = math.random
local format, rep, concat = string.format, string.rep, table.concat
math.randomseed(42)  -- the same work on every build and run

local WINDOW = 20000
local live = {}
local parts = {}
local sum = 0
for i = 1, n do
  local r = random(1000)
  local s
  if r <= 500 then  -- a short key
    s = "user:" .. i
  elseif r <= 750 then  -- a short formatted line
    s = format("%d,%d", i, r)
  elseif r <= 900 then  -- medium, by repetition
    s = rep("ab", random(20, 200))
  elseif r <= 995 then  -- medium, a joined list
    local k = random(4, 24)
    for j = 1, k do parts[j] = i + j end
    s = concat(parts, ",", 1, k)
  else  -- long
    s = rep("x", random(4096, 65536))
  end
  sum = sum + #s
  live[random(WINDOW)] = s
end
print("checksum", sum)
