print("podtap-flows")
