-- strings.lua [N]: string-heavy work: formatting, concatenation, pattern
-- matching and substitution, splitting, many short interned strings.
local n = tonumber(arg and arg[1]) or 100000

local total = 0
for round = 1, 3 do
  local parts = {}
  for i = 1, n do
    parts[i] = string.format("%d:%s:%05.1f", i, ("k" .. i % 977), i / 7)
  end
  local line = table.concat(parts, ",")
  local count = 0
  for a, b in line:gmatch("(%d+):k(%d+)") do count = count + (a + b) % 3 end
  local up = line:sub(1, 200000):gsub("k(%d)", function (d) return "K" .. d end)
  local seen = {}
  for i = 1, n do
    local key = "key" .. (i % 5003) .. "_" .. round
    seen[key] = (seen[key] or 0) + 1
  end
  local s = ""
  for i = 1, 2000 do s = s .. tostring(i % 10) end
  total = total + count + #up + #s + #line // 1000
  for _, v in pairs(seen) do total = total + v end
  local words = {}
  for w in ("the quick brown fox jumps over the lazy dog "):rep(n // 100):gmatch("%a+") do
    words[#words + 1] = w:upper():reverse()
  end
  total = total + #words
end
print("checksum", total)
