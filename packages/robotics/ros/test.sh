#!/usr/bin/env bash
# ROS 2 is installed for the expected distro, its CLI lists the core packages, and a
# publisher and a subscriber in one rclpy process exchange a message.
set -eo pipefail
source "/opt/ros/${ROS_DISTRO}/setup.bash"
set -u
echo "ROS_DISTRO=${ROS_DISTRO}"
ros2 pkg list > /tmp/packages.txt
grep -qx rclpy /tmp/packages.txt
grep -qx std_msgs /tmp/packages.txt
command -v colcon
/usr/bin/python3 /test/test_rclpy.py
echo "ros ok"
