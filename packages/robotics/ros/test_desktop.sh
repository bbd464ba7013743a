#!/usr/bin/env bash
# The desktop variant adds the demos and visualisation: the C++ talker publishes and the
# CLI hears it; rviz2 is installed (not started: no display is assumed).
set -eo pipefail
source "/opt/ros/${ROS_DISTRO}/setup.bash"
set -u
ros2 pkg prefix rviz2
ros2 run demo_nodes_cpp talker > /tmp/talker.log 2>&1 &
talker=$!
trap 'kill ${talker} 2>/dev/null || true' EXIT
timeout 30 ros2 topic echo --once /chatter std_msgs/msg/String | tee /tmp/heard.txt
grep -q "Hello World" /tmp/heard.txt
echo "ros desktop ok"
