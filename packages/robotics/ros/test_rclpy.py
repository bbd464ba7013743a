"""A publisher and a subscriber in one rclpy node exchange a std_msgs/String."""

import time

import rclpy
from std_msgs.msg import String

rclpy.init()
node = rclpy.create_node("jetforge_ros_test")
received = []
node.create_subscription(String, "jetforge_test", lambda msg: received.append(msg.data), 10)
publisher = node.create_publisher(String, "jetforge_test", 10)
deadline = time.monotonic() + 20
while not received and time.monotonic() < deadline:
    publisher.publish(String(data="hello from jetforge"))
    rclpy.spin_once(node, timeout_sec=0.2)
node.destroy_node()
rclpy.shutdown()
assert received and received[0] == "hello from jetforge", received
print("rclpy ok")
