-- tables.lua [N]: table-heavy work: records with hash parts, arrays grown
-- and shrunk, rehashing, field updates, table.insert/remove/sort.
local n = tonumber(arg and arg[1]) or 200000

local sum = 0
for round = 1, 4 do
  local people = {}
  for i = 1, n do
    people[i] = { id = i, name = "p" .. (i % 1000), age = i % 90, tags = { i % 7, i % 11 } }
  end
  local byname = {}
  for i = 1, n do
    local p = people[i]
    local list = byname[p.name]
    if not list then list = {}; byname[p.name] = list end
    list[#list + 1] = p
    p.age = p.age + round
  end
  for _, list in pairs(byname) do
    table.sort(list, function (a, b) return a.age < b.age end)
    sum = sum + list[1].age + #list
  end
  local queue = {}
  for i = 1, n // 4 do table.insert(queue, i) end
  while #queue > 0 do sum = sum + table.remove(queue) end
  local sparse = {}
  for i = 1, n do sparse[i * 7 % 1000003] = i end
  for k in pairs(sparse) do sparse[k] = nil end
end
print("checksum", sum)
