"""What runs on the EC2 instance: the backup agent and the files that schedule it."""
