"""The instance's image (AMI) for each supported distribution, looked up once per stack.

Amazon Linux 2023 and Ubuntu publish their current images as public SSM
parameters; Debian publishes its official images from its own AWS account
(``debian-12-amd64-*``), found with an owner filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.aws import aws_error
from shared.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient

SSM_PARAMETER = {
    "al2023": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "ubuntu2204": "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/"
                  "ebs-gp2/ami-id",
}
DEBIAN_OWNER = "136693071363"  # Debian's official cloud images (wiki.debian.org/Cloud)
OWNER_FILTER = {"debian12": (DEBIAN_OWNER, "debian-12-amd64-*")}
NAMES = {"al2023": "Amazon Linux 2023", "ubuntu2204": "Ubuntu 22.04",
         "debian12": "Debian 12"}


def current_image(ssm: SSMClient, ec2: EC2Client, distro: str, region: str) -> str:
    """The newest x86_64 image of ``distro`` in ``region`` (where the clients point)."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = NAMES.get(distro)
    if name is None:
        raise ConfigError(f"distro {distro!r} is not supported",
                          f"choose one of {', '.join(NAMES)}")
    try:
        if distro in SSM_PARAMETER:
            value = ssm.get_parameter(Name=SSM_PARAMETER[distro])
            return value["Parameter"]["Value"]
        owner, pattern = OWNER_FILTER[distro]
        images = ec2.describe_images(Owners=[owner], Filters=[
            {"Name": "name", "Values": [pattern]},
            {"Name": "architecture", "Values": ["x86_64"]},
            {"Name": "state", "Values": ["available"]}])["Images"]
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, f"look up the current {name} image") from None
    if not images:
        raise ConfigError(f"no {name} image is published in {region}",
                          "choose another --distro or region")
    newest = max(images, key=lambda image: image.get("CreationDate", ""))
    return newest["ImageId"]
