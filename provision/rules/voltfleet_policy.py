"""voltfleet's policy rules for its CloudFormation stacks, run by cfn-lint beside its own
(`cfn-lint --append-rules provision/rules`): what the operator's estate must hold that cfn-lint
and checkov do not check, or not this strictly. Each rule is one class; ids are E90xx.

Values are read as written; a `Ref` to a parameter is read as that parameter's Default, and
both branches of an `Fn::If` must pass. A value the rules cannot know (an import, a GetAtt) is
left to the other rules, except where the policy needs a literal (said in the message).
"""

from __future__ import annotations

import re
from typing import Any, Iterator
from zoneinfo import available_timezones

from cfnlint.rules import CloudFormationLintRule, RuleMatch

UNKNOWN = object()


def _parameters(cfn) -> dict[str, Any]:
    params = cfn.template.get("Parameters", {})
    return params if isinstance(params, dict) else {}


def values(cfn, value: Any) -> Iterator[Any]:
    """Every value `value` can take: Fn::If gives both branches, a Ref to a parameter its Default
    (UNKNOWN without one), a pseudo parameter or another intrinsic UNKNOWN."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "Fn::If" and isinstance(inner, list) and len(inner) == 3:
            yield from values(cfn, inner[1])
            yield from values(cfn, inner[2])
            return
        if key == "Ref" and isinstance(inner, str):
            param = _parameters(cfn).get(inner)
            if isinstance(param, dict) and "Default" in param:
                yield param["Default"]
            elif inner == "AWS::NoValue":
                yield None
            else:
                yield UNKNOWN
            return
        if key.startswith("Fn::") or key == "Ref":
            yield UNKNOWN
            return
    yield value


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def resources(cfn, *types: str) -> Iterator[tuple[str, dict, dict]]:
    for name, resource in cfn.get_resources(list(types)).items():
        props = resource.get("Properties", {})
        yield name, resource, props if isinstance(props, dict) else {}


class _Rule(CloudFormationLintRule):
    tags = ["voltfleet"]

    def check(self, cfn) -> Iterator[tuple[list, str]]:  # pragma: no cover - overridden
        return iter(())

    def match(self, cfn):
        return [RuleMatch(path, message) for path, message in self.check(cfn)]

    @staticmethod
    def require_true(cfn, name: str, props: dict, key: str, what: str) -> Iterator[tuple[list, str]]:
        for value in values(cfn, props.get(key)):
            if not truthy(value):
                yield ["Resources", name, "Properties", key], f"{name}: {key} must be true ({what})"
                return


class MultiAz(_Rule):
    id = "E9001"
    shortdesc = "Multi-AZ wherever it applies"
    description = ("RDS Multi-AZ; Redis Multi-AZ with automatic failover and at least two nodes; "
                   "Auto Scaling groups, load balancers and subnet groups over two subnets or more; "
                   "a NAT gateway per AZ")
    source_url = "https://docs.aws.amazon.com/whitepapers/latest/real-time-communication-on-aws/high-availability-and-scalability-on-aws.html"

    def check(self, cfn):
        for name, _, props in resources(cfn, "AWS::RDS::DBInstance"):
            yield from self.require_true(cfn, name, props, "MultiAZ", "a standby in the second AZ")
        for name, _, props in resources(cfn, "AWS::ElastiCache::ReplicationGroup"):
            yield from self.require_true(cfn, name, props, "MultiAZEnabled", "replicas in both AZs")
            yield from self.require_true(cfn, name, props, "AutomaticFailoverEnabled", "a replica takes over")
            yield from self._two_nodes(cfn, name, props)
        for name, _, props in resources(cfn, "AWS::AutoScaling::AutoScalingGroup"):
            yield from self._two_subnets(cfn, name, props, "VPCZoneIdentifier")
        for name, _, props in resources(cfn, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
            key = "SubnetMappings" if "SubnetMappings" in props else "Subnets"
            yield from self._two_subnets(cfn, name, props, key)
        for type_ in ("AWS::RDS::DBSubnetGroup", "AWS::ElastiCache::SubnetGroup"):
            for name, _, props in resources(cfn, type_):
                yield from self._two_subnets(cfn, name, props, "SubnetIds")
        nats = list(resources(cfn, "AWS::EC2::NatGateway"))
        if len(nats) == 1:
            yield ["Resources", nats[0][0]], f"{nats[0][0]}: one NAT gateway; each AZ needs its own"

    def _two_nodes(self, cfn, name, props):
        if "NumCacheClusters" in props:
            raw = props["NumCacheClusters"]
            if isinstance(raw, dict) and isinstance(raw.get("Ref"), str):
                param = _parameters(cfn).get(raw["Ref"], {})
                if int(param.get("MinValue", 0)) < 2:
                    yield (["Parameters", raw["Ref"]],
                           f"{raw['Ref']}: MinValue must be 2 or more (it sets {name}'s NumCacheClusters)")
            for value in values(cfn, raw):
                if value is not UNKNOWN and int(value) < 2:
                    yield ["Resources", name, "Properties", "NumCacheClusters"], f"{name}: NumCacheClusters must be 2 or more"
        elif "ReplicasPerNodeGroup" in props:
            for value in values(cfn, props["ReplicasPerNodeGroup"]):
                if value is not UNKNOWN and int(value) < 1:
                    yield ["Resources", name, "Properties", "ReplicasPerNodeGroup"], f"{name}: needs a replica per shard"
        else:
            yield ["Resources", name, "Properties"], f"{name}: set NumCacheClusters (2 or more) so that a replica exists"

    def _two_subnets(self, cfn, name, props, key):
        raw = props.get(key)
        path = ["Resources", name, "Properties", key]
        if isinstance(raw, list):
            if len(raw) < 2:
                yield path, f"{name}: {key} lists {len(raw)} subnet; two AZs need two"
            return
        if isinstance(raw, dict) and isinstance(raw.get("Ref"), str):
            param = _parameters(cfn).get(raw["Ref"], {})
            if not str(param.get("Type", "")).startswith("List<") and param.get("Type") != "CommaDelimitedList":
                yield path, f"{name}: {key} comes from {raw['Ref']}, which is not a list of subnets"
            return
        if raw is None:
            yield path, f"{name}: {key} is not set; name a subnet in each AZ"


class EncryptedAtRest(_Rule):
    id = "E9002"
    shortdesc = "Encryption at rest"
    description = "S3, EBS in launch templates, RDS, ElastiCache, Firehose, SNS, Backup vaults, KMS key rotation"
    source_url = "https://docs.aws.amazon.com/whitepapers/latest/logical-separation/encrypting-data-at-rest-and--in-transit.html"

    def check(self, cfn):
        for name, _, props in resources(cfn, "AWS::S3::Bucket"):
            if "BucketEncryption" not in props:
                yield ["Resources", name, "Properties"], f"{name}: BucketEncryption is not set"
        for name, _, props in resources(cfn, "AWS::RDS::DBInstance", "AWS::RDS::DBCluster"):
            yield from self.require_true(cfn, name, props, "StorageEncrypted", "encrypted storage")
        for name, _, props in resources(cfn, "AWS::ElastiCache::ReplicationGroup"):
            yield from self.require_true(cfn, name, props, "AtRestEncryptionEnabled", "encrypted data and snapshots")
        for name, _, props in resources(cfn, "AWS::EC2::LaunchTemplate"):
            data = props.get("LaunchTemplateData", {})
            mappings = data.get("BlockDeviceMappings") if isinstance(data, dict) else None
            if not isinstance(mappings, list) or not mappings:
                yield (["Resources", name, "Properties", "LaunchTemplateData"],
                       f"{name}: no BlockDeviceMappings; declare the root volume encrypted")
                continue
            for index, mapping in enumerate(mappings):
                ebs = mapping.get("Ebs") if isinstance(mapping, dict) else None
                if isinstance(ebs, dict) and not any(truthy(v) for v in values(cfn, ebs.get("Encrypted"))):
                    yield (["Resources", name, "Properties", "LaunchTemplateData", "BlockDeviceMappings", index],
                           f"{name}: volume {index} is not Encrypted")
        for name, _, props in resources(cfn, "AWS::KinesisFirehose::DeliveryStream"):
            if "DeliveryStreamEncryptionConfigurationInput" not in props:
                yield ["Resources", name, "Properties"], f"{name}: the delivery stream is not encrypted"
        for name, _, props in resources(cfn, "AWS::SNS::Topic"):
            if "KmsMasterKeyId" not in props:
                yield ["Resources", name, "Properties"], f"{name}: KmsMasterKeyId is not set"
        for name, _, props in resources(cfn, "AWS::Backup::BackupVault"):
            if "EncryptionKeyArn" not in props:
                yield ["Resources", name, "Properties"], f"{name}: EncryptionKeyArn is not set (a customer key)"
        for name, _, props in resources(cfn, "AWS::KMS::Key"):
            spec = props.get("KeySpec", "SYMMETRIC_DEFAULT")
            if spec == "SYMMETRIC_DEFAULT":
                yield from self.require_true(cfn, name, props, "EnableKeyRotation", "yearly rotation")


class EncryptedInTransit(_Rule):
    id = "E9003"
    shortdesc = "Encryption in transit"
    description = ("Listeners HTTPS or TLS (HTTP only to redirect, or on an internal load balancer with the "
                   "reason in its Metadata; TCP only on 443 to a TLS-terminating target), Redis TLS, RDS require_secure_transport, RDS Proxy RequireTLS, buckets TLS-only, "
                   "CloudFront HTTPS to viewers and origins")
    source_url = "https://docs.aws.amazon.com/whitepapers/latest/logical-separation/encrypting-data-at-rest-and--in-transit.html"

    def check(self, cfn):
        balancers = {name: props for name, _, props in resources(cfn, "AWS::ElasticLoadBalancingV2::LoadBalancer")}
        for name, resource, props in resources(cfn, "AWS::ElasticLoadBalancingV2::Listener"):
            protocol = props.get("Protocol")
            if protocol in ("HTTPS", "TLS"):
                continue
            if protocol == "HTTP" and self._justified_internal(resource, props, balancers):
                continue
            if protocol == "HTTP":
                actions = props.get("DefaultActions", [])
                redirects = isinstance(actions, list) and actions and all(
                    isinstance(a, dict) and a.get("Type") == "redirect"
                    and a.get("RedirectConfig", {}).get("Protocol") == "HTTPS" for a in actions)
                if not redirects:
                    yield ["Resources", name, "Properties"], f"{name}: an HTTP listener may only redirect to HTTPS"
            elif protocol == "TCP":
                if props.get("Port") not in (443, "443"):
                    yield (["Resources", name, "Properties", "Port"],
                           f"{name}: a TCP listener carries TLS to the proxy only on port 443")
            else:
                yield ["Resources", name, "Properties", "Protocol"], f"{name}: protocol {protocol!r} is not encrypted"
        for name, _, props in resources(cfn, "AWS::ElastiCache::ReplicationGroup"):
            yield from self.require_true(cfn, name, props, "TransitEncryptionEnabled", "TLS between clients and nodes")
        for name, _, props in resources(cfn, "AWS::RDS::DBProxy"):
            yield from self.require_true(cfn, name, props, "RequireTLS", "clients connect with TLS")
        groups = dict((name, props) for name, _, props in resources(cfn, "AWS::RDS::DBParameterGroup"))
        for name, props in groups.items():
            setting = (props.get("Parameters") or {}).get("require_secure_transport")
            if str(setting).upper() not in ("ON", "1"):
                yield (["Resources", name, "Properties", "Parameters"],
                       f"{name}: require_secure_transport must be ON")
        for name, _, props in resources(cfn, "AWS::RDS::DBInstance"):
            ref = props.get("DBParameterGroupName")
            if not (isinstance(ref, dict) and ref.get("Ref") in groups):
                yield (["Resources", name, "Properties"],
                       f"{name}: DBParameterGroupName must be this template's parameter group (require_secure_transport)")
        tls_only = set()
        for name, _, props in resources(cfn, "AWS::S3::BucketPolicy"):
            bucket = props.get("Bucket")
            statements = (props.get("PolicyDocument") or {}).get("Statement", [])
            for statement in statements if isinstance(statements, list) else []:
                condition = statement.get("Condition", {}) if isinstance(statement, dict) else {}
                if statement.get("Effect") == "Deny" and str(
                        condition.get("Bool", {}).get("aws:SecureTransport")).lower() == "false":
                    if isinstance(bucket, dict) and "Ref" in bucket:
                        tls_only.add(bucket["Ref"])
        for name, _, _ in resources(cfn, "AWS::S3::Bucket"):
            if name not in tls_only:
                yield ["Resources", name], f"{name}: no bucket policy denies requests without TLS (aws:SecureTransport)"
        for name, _, props in resources(cfn, "AWS::CloudFront::Distribution"):
            config = props.get("DistributionConfig", {})
            behaviours = [config.get("DefaultCacheBehavior", {})] + list(config.get("CacheBehaviors", []) or [])
            for behaviour in behaviours:
                if isinstance(behaviour, dict) and behaviour.get("ViewerProtocolPolicy") == "allow-all":
                    yield ["Resources", name], f"{name}: a cache behaviour allows plain HTTP to viewers"
            for origin in config.get("Origins", []) or []:
                custom = origin.get("CustomOriginConfig") if isinstance(origin, dict) else None
                if isinstance(custom, dict) and custom.get("OriginProtocolPolicy") != "https-only":
                    yield ["Resources", name], f"{name}: origin {origin.get('Id')} is not https-only"


    @staticmethod
    def _justified_internal(resource, props, balancers) -> bool:
        """Plain HTTP on an internal load balancer, with the reason in the listener's
        Metadata (`voltfleet: {plaintext: why}`), as checkov skips carry theirs."""
        reason = ((resource.get("Metadata") or {}).get("voltfleet") or {}).get("plaintext")
        target = props.get("LoadBalancerArn")
        balancer = balancers.get(target.get("Ref")) if isinstance(target, dict) else None
        return bool(reason and str(reason).strip()) and isinstance(balancer, dict) and balancer.get("Scheme") == "internal"


class NoInternetIntoPrivateTiers(_Rule):
    id = "E9004"
    shortdesc = "No 0.0.0.0/0 into the app or data tiers"
    description = ("Only the internet-facing load balancers' security groups (the ones output as "
                   "ExternalAlbSecurityGroupId and NlbSecurityGroupId) may take ingress from anywhere")
    source_url = "https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-best-practices.html"
    public_outputs = ("ExternalAlbSecurityGroupId", "NlbSecurityGroupId")

    def check(self, cfn):
        public = set()
        for output_name in self.public_outputs:
            value = cfn.template.get("Outputs", {}).get(output_name, {}).get("Value")
            if isinstance(value, dict):
                target = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
                if isinstance(target, str):
                    public.add(target.split(".")[0])
        for name, _, props in resources(cfn, "AWS::EC2::SecurityGroup"):
            for index, rule in enumerate(props.get("SecurityGroupIngress", []) or []):
                if self._open(rule) and name not in public:
                    yield (["Resources", name, "Properties", "SecurityGroupIngress", index],
                           f"{name}: ingress from anywhere into a security group that is not an internet-facing load balancer's")
        for name, _, props in resources(cfn, "AWS::EC2::SecurityGroupIngress"):
            group = props.get("GroupId")
            target = group.get("Ref") if isinstance(group, dict) else None
            if self._open(props) and target not in public:
                yield ["Resources", name, "Properties"], f"{name}: ingress from anywhere into {target or group}"

    @staticmethod
    def _open(rule: Any) -> bool:
        return isinstance(rule, dict) and (rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0")


class DeletionProtection(_Rule):
    id = "E9005"
    shortdesc = "Deletion protection on what cannot be rebuilt"
    description = ("RDS DeletionProtection; load balancers' deletion_protection.enabled; DeletionPolicy and "
                   "UpdateReplacePolicy Snapshot or Retain on databases, caches, buckets, KMS keys, Elastic IPs "
                   "and backup vaults")
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html"
    kept = {
        "AWS::RDS::DBInstance": ("Snapshot", "Retain"),
        "AWS::ElastiCache::ReplicationGroup": ("Snapshot", "Retain"),
        "AWS::S3::Bucket": ("Retain",),
        "AWS::KMS::Key": ("Retain",),
        "AWS::EC2::EIP": ("Retain",),
        "AWS::Backup::BackupVault": ("Retain",),
    }

    def check(self, cfn):
        for name, _, props in resources(cfn, "AWS::RDS::DBInstance"):
            yield from self.require_true(cfn, name, props, "DeletionProtection", "no accidental delete")
        for name, _, props in resources(cfn, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
            attributes = {a.get("Key"): a.get("Value") for a in props.get("LoadBalancerAttributes", []) or []
                          if isinstance(a, dict)}
            if not any(truthy(v) for v in values(cfn, attributes.get("deletion_protection.enabled"))):
                yield ["Resources", name, "Properties"], f"{name}: deletion_protection.enabled must be true"
        for type_, allowed in self.kept.items():
            for name, resource, _ in resources(cfn, type_):
                for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                    if resource.get(policy) not in allowed:
                        yield (["Resources", name],
                               f"{name}: {policy} must be {' or '.join(allowed)}, not {resource.get(policy, 'Delete')}")


class InstanceMetadataV2(_Rule):
    id = "E9006"
    shortdesc = "IMDSv2 only"
    description = "Launch templates require session tokens for the instance metadata service"
    source_url = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html"

    def check(self, cfn):
        for name, _, props in resources(cfn, "AWS::EC2::LaunchTemplate"):
            data = props.get("LaunchTemplateData", {})
            options = data.get("MetadataOptions", {}) if isinstance(data, dict) else {}
            if options.get("HttpTokens") != "required":
                yield (["Resources", name, "Properties", "LaunchTemplateData"],
                       f"{name}: MetadataOptions.HttpTokens must be required")


class PrivateVersionedBuckets(_Rule):
    id = "E9007"
    shortdesc = "Buckets private and versioned"
    description = "S3 buckets block every kind of public access and keep versions"
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html"

    def check(self, cfn):
        keys = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        for name, _, props in resources(cfn, "AWS::S3::Bucket"):
            block = props.get("PublicAccessBlockConfiguration", {})
            missing = [key for key in keys if not truthy(block.get(key) if isinstance(block, dict) else None)]
            if missing:
                yield ["Resources", name, "Properties"], f"{name}: public access not blocked ({', '.join(missing)})"
            status = (props.get("VersioningConfiguration") or {}).get("Status")
            if status != "Enabled":
                yield ["Resources", name, "Properties"], f"{name}: VersioningConfiguration.Status must be Enabled"


class BackupPlanAsTheSeedSays(_Rule):
    id = "E9008"
    shortdesc = "The backup plan's three rules, exactly"
    description = ("Daily at 03:00 Europe/Madrid kept 30 days; monthly on the 1st kept 365 days; "
                   "on 1 January and 1 July kept 1825 days")
    source_url = "https://docs.aws.amazon.com/aws-backup/latest/devguide/creating-a-backup-plan.html"
    wanted = {
        "cron(0 3 * * ? *)": 30,
        "cron(0 3 1 * ? *)": 365,
        "cron(0 3 1 1,7 ? *)": 1825,
    }

    def check(self, cfn):
        for name, _, props in resources(cfn, "AWS::Backup::BackupPlan"):
            rules = (props.get("BackupPlan") or {}).get("BackupPlanRule", [])
            path = ["Resources", name, "Properties", "BackupPlan", "BackupPlanRule"]
            found = {}
            for rule in rules if isinstance(rules, list) else []:
                if not isinstance(rule, dict):
                    continue
                expression = rule.get("ScheduleExpression")
                found[expression] = (rule.get("Lifecycle") or {}).get("DeleteAfterDays")
                if rule.get("ScheduleExpressionTimezone") != "Europe/Madrid":
                    yield path, f"{name}: rule {rule.get('RuleName')} must run in Europe/Madrid time"
            if len(found) != len(rules or []) or set(found) != set(self.wanted):
                yield path, (f"{name}: the rules must be exactly {sorted(self.wanted)} "
                             f"(found {sorted(str(k) for k in found)})")
            for expression, days in self.wanted.items():
                if expression in found and str(found[expression]) != str(days):
                    yield path, f"{name}: {expression} must be kept {days} days, not {found[expression]}"


AWS_CRON_FIELDS = (  # name, lowest, highest, extra words
    ("minutes", 0, 59, ()), ("hours", 0, 23, ()), ("day-of-month", 1, 31, ("L", "W")),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day-of-week", 1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "L")),
    ("year", 1970, 2199, ()),
)
UNIX_CRON_FIELDS = (("minutes", 0, 59, ()), ("hours", 0, 23, ()), ("day-of-month", 1, 31, ()),
                    ("month", 1, 12, ()), ("day-of-week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")))


def cron_field_problem(text: str, field) -> str | None:
    name, low, high, words = field
    for part in text.split(","):
        part = part.upper()
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            return f"{name} step {step!r} is not a number"
        if base in ("*", "?"):
            continue
        if "#" in base and name == "day-of-week":
            base = base.split("#")[0]
        for bound in base.split("-"):
            bound = bound.rstrip("LW") or bound if name == "day-of-month" else bound
            if bound in words:
                continue
            if not bound.isdigit() or not low <= int(bound) <= high:
                return f"{name} {part!r} is outside {low}-{high}"
    return None


def aws_schedule_problem(expression: str) -> str | None:
    """The problem with an AWS schedule expression (`cron(…)` with six fields or `rate(…)`)."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if rate:
        singular = rate.group(2).endswith("e") or rate.group(2) in ("hour", "day")
        if (rate.group(1) == "1") != singular:
            return f"{expression}: rate(1 …) takes a singular unit and other values a plural one"
        return None
    cron = re.fullmatch(r"cron\(([^)]*)\)", expression)
    if not cron:
        return f"{expression}: neither cron(…) nor rate(…)"
    fields = cron.group(1).split()
    if len(fields) != 6:
        return f"{expression}: an AWS cron expression has six fields, this has {len(fields)}"
    if (fields[2] == "?") == (fields[4] == "?"):
        return f"{expression}: exactly one of day-of-month and day-of-week must be ?"
    for text, field in zip(fields, AWS_CRON_FIELDS):
        problem = cron_field_problem(text, field)
        if problem:
            return f"{expression}: {problem}"
    return None


def unix_cron_problem(expression: str) -> str | None:
    """The problem with a five-field cron expression (Auto Scaling scheduled actions)."""
    fields = expression.split()
    if len(fields) != 5:
        return f"{expression}: a scheduled action's Recurrence has five fields, this has {len(fields)}"
    for text, field in zip(fields, UNIX_CRON_FIELDS):
        if text == "?":
            return f"{expression}: ? is not allowed in a five-field cron expression"
        problem = cron_field_problem(text, field)
        if problem:
            return f"{expression}: {problem}"
    return None


class SchedulesAndTimezones(_Rule):
    id = "E9009"
    shortdesc = "Valid cron expressions and time zone names"
    description = ("Backup rules and EventBridge rules use valid AWS cron/rate expressions, scheduled "
                   "scaling actions valid five-field cron, and every time zone is an IANA name")
    source_url = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html"
    zones = available_timezones()

    def check(self, cfn):
        for name, _, props in resources(cfn, "AWS::Backup::BackupPlan"):
            for index, rule in enumerate((props.get("BackupPlan") or {}).get("BackupPlanRule", []) or []):
                path = ["Resources", name, "Properties", "BackupPlan", "BackupPlanRule", index]
                yield from self._aws(cfn, path, rule.get("ScheduleExpression"))
                yield from self._zone(cfn, path, rule.get("ScheduleExpressionTimezone"))
        for name, _, props in resources(cfn, "AWS::Events::Rule", "AWS::Scheduler::Schedule"):
            if "ScheduleExpression" in props:
                yield from self._aws(cfn, ["Resources", name, "Properties"], props["ScheduleExpression"])
            if "ScheduleExpressionTimezone" in props:
                yield from self._zone(cfn, ["Resources", name, "Properties"], props["ScheduleExpressionTimezone"])
        for name, _, props in resources(cfn, "AWS::AutoScaling::ScheduledAction"):
            path = ["Resources", name, "Properties"]
            for value in values(cfn, props.get("Recurrence")):
                if isinstance(value, str):
                    problem = unix_cron_problem(value)
                    if problem:
                        yield path, f"{name}: {problem}"
            if "TimeZone" in props:
                yield from self._zone(cfn, path, props["TimeZone"])

    def _aws(self, cfn, path, raw):
        for value in values(cfn, raw):
            if isinstance(value, str):
                problem = aws_schedule_problem(value)
                if problem:
                    yield path, problem

    def _zone(self, cfn, path, raw):
        for value in values(cfn, raw):
            if isinstance(value, str) and value not in self.zones:
                yield path, f"{value!r} is not an IANA time zone name (like Europe/Madrid)"
