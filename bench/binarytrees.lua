-- binarytrees.lua [DEPTH]: the classic allocation benchmark; allocates and
-- drops complete binary trees of tables (checksum printed to keep it honest).
local maxdepth = tonumber(arg and arg[1]) or 15

local function bottomup (depth)
  if depth == 0 then return {} end
  depth = depth - 1
  return { bottomup(depth), bottomup(depth) }
end

local function check (tree)
  if tree[1] then return 1 + check(tree[1]) + check(tree[2]) end
  return 1
end

local mindepth = 4
if mindepth + 2 > maxdepth then maxdepth = mindepth + 2 end
local total = check(bottomup(maxdepth + 1))
local longlived = bottomup(maxdepth)
for depth = mindepth, maxdepth, 2 do
  local iters = 2 ^ (maxdepth - depth + mindepth) // 1
  local sum = 0
  for _ = 1, iters do sum = sum + check(bottomup(depth)) end
  total = total + sum
end
total = total + check(longlived)
print("checksum", total)
