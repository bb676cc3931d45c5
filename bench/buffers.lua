-- buffers.lua K N: N strings of K KB, each built by table.concat (a
-- luaL_Buffer: a box grown by half at a time, then the string made from
-- it and the box freed), as a server builds its replies; dropped at once,
-- so the VM's heap stays small while its large blocks churn.
local k = assert(tonumber(arg and arg[1]), "usage: buffers.lua K N")
local n = assert(tonumber(arg and arg[2]), "usage: buffers.lua K N")
local piece = string.rep("y", 1024)
local parts = {}
for i = 1, k do parts[i] = piece end
local concat, sum = table.concat, 0
for _ = 1, n do sum = sum + #concat(parts) end
print("checksum", sum)
