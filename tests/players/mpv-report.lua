-- Loaded by mpv-check.sh: reports how far playback got, as one line on stdout at end-file.
-- (time-pos observations coalesce under --untimed, so only the last position is meaningful.)
local last, duration, width = nil, nil, 0
mp.observe_property("time-pos", "number", function(_, v)
  if v ~= nil then last = v end
end)
mp.observe_property("duration", "number", function(_, v)
  if v ~= nil then duration = v end
end)
mp.observe_property("video-params/w", "number", function(_, v)
  if v ~= nil and v > width then width = v end
end)
mp.register_event("end-file", function(e)
  io.stdout:write(string.format("HLSGATE_MPV reason=%s error=%s last=%s duration=%s width=%d\n",
    tostring(e.reason), tostring(e.error), tostring(last), tostring(duration), width))
  io.stdout:flush()
end)
