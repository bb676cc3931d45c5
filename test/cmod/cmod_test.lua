-- Loads cmod.so (built against the stock headers) and checks what it does.
package.path = arg[0]:gsub("[^/]*$", "") .. "../compat/?.lua"
local T = require "harness"
T.section "cmod"
local cmod = require "cmod"
local c = cmod.new(5)
T.eq(c:bump(), 6, "method call through __index")
T.eq(c:bump(10), 16, "method with argument")
T.eq(tostring(c), "Counter(16)", "__tostring from C")
T.eq(cmod.concat("a", "b", "c"), "abc", "luaL_Buffer")
T.err("bad argument #2 to 'cmod.concat' (string expected, got table)",
      cmod.concat, "error from luaL_checkstring", "a", {})
T.err("calling 'bump' on bad self (cmod.Counter expected, got table)",
      function () local fake = {bump = c.bump}; return fake:bump() end,
      "error from luaL_checkudata")
T.done()
