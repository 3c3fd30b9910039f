//! A parameter value checked as CloudFormation checks it before it creates anything: the type
//! (`Number`, lists, the shape of AWS-specific ids) and the constraints the template declares.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::template::ParamSpec;

/// The AWS-specific parameter types, whose values CloudFormation looks up in the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsType {
    AvailabilityZoneName,
    ImageId,
    InstanceId,
    KeyPairName,
    SecurityGroupName,
    SecurityGroupId,
    SubnetId,
    VolumeId,
    VpcId,
    HostedZoneId,
}

const AWS_TYPES: &[(&str, AwsType)] = &[
    (
        "AWS::EC2::AvailabilityZone::Name",
        AwsType::AvailabilityZoneName,
    ),
    ("AWS::EC2::Image::Id", AwsType::ImageId),
    ("AWS::EC2::Instance::Id", AwsType::InstanceId),
    ("AWS::EC2::KeyPair::KeyName", AwsType::KeyPairName),
    (
        "AWS::EC2::SecurityGroup::GroupName",
        AwsType::SecurityGroupName,
    ),
    ("AWS::EC2::SecurityGroup::Id", AwsType::SecurityGroupId),
    ("AWS::EC2::Subnet::Id", AwsType::SubnetId),
    ("AWS::EC2::Volume::Id", AwsType::VolumeId),
    ("AWS::EC2::VPC::Id", AwsType::VpcId),
    ("AWS::Route53::HostedZone::Id", AwsType::HostedZoneId),
];

impl AwsType {
    /// What a value of this type looks like, for messages.
    fn expected(self) -> &'static str {
        match self {
            AwsType::AvailabilityZoneName => "an Availability Zone name like eu-west-1a",
            AwsType::ImageId => "an AMI id: ami- and 8 or 17 hexadecimal digits",
            AwsType::InstanceId => "an instance id: i- and 8 or 17 hexadecimal digits",
            AwsType::KeyPairName => "a key pair name of 1 to 255 ASCII characters",
            AwsType::SecurityGroupName => "a security group name of 1 to 255 characters",
            AwsType::SecurityGroupId => "a security group id: sg- and 8 or 17 hexadecimal digits",
            AwsType::SubnetId => "a subnet id: subnet- and 8 or 17 hexadecimal digits",
            AwsType::VolumeId => "a volume id: vol- and 8 or 17 hexadecimal digits",
            AwsType::VpcId => "a VPC id: vpc- and 8 or 17 hexadecimal digits",
            AwsType::HostedZoneId => {
                "a Route 53 hosted zone id: Z and upper-case letters and digits, like Z2FDTNDATAQYW2 (without /hostedzone/)"
            }
        }
    }

    fn accepts(self, value: &str) -> bool {
        static AZ: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"^[a-z]{2}(-[a-z]+)+-\d+[a-z]$|^[a-z]{2}(-[a-z]+)+-\d+(-[a-z0-9]+)+[a-z]$")
                .expect("constant pattern")
        });
        static HOSTED_ZONE: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"^Z[A-Z0-9]{1,31}$").expect("constant pattern"));
        let hex_id = |prefix: &str| {
            value.strip_prefix(prefix).is_some_and(|rest| {
                (rest.len() == 8 || rest.len() == 17)
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
        };
        match self {
            AwsType::AvailabilityZoneName => AZ.is_match(value),
            AwsType::ImageId => hex_id("ami-"),
            AwsType::InstanceId => hex_id("i-"),
            AwsType::KeyPairName => (1..=255).contains(&value.len()) && value.is_ascii(),
            AwsType::SecurityGroupName => (1..=255).contains(&value.chars().count()),
            AwsType::SecurityGroupId => hex_id("sg-"),
            AwsType::SubnetId => hex_id("subnet-"),
            AwsType::VolumeId => hex_id("vol-"),
            AwsType::VpcId => hex_id("vpc-"),
            AwsType::HostedZoneId => HOSTED_ZONE.is_match(value),
        }
    }
}

/// A parameter's `Type`, as far as checking a value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Number,
    NumberList,
    CommaDelimitedList,
    Aws(AwsType),
    AwsList(AwsType),
    /// `AWS::SSM::Parameter::Name` and `AWS::SSM::Parameter::Value<…>`: the value is the name
    /// of a Systems Manager parameter, resolved by CloudFormation.
    SsmParameter,
}

/// The `Type` is none that CloudFormation knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType {
    pub given: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for UnknownType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Type {} is not a CloudFormation parameter type",
            self.given
        )?;
        match &self.suggestion {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => write!(
                f,
                " (String, Number, List<Number>, CommaDelimitedList, an AWS-specific type such as AWS::EC2::VPC::Id or List<AWS::EC2::Subnet::Id>, or AWS::SSM::Parameter::Value<…>)"
            ),
        }
    }
}

impl std::error::Error for UnknownType {}

impl ParamType {
    pub fn parse(type_name: &str) -> Result<ParamType, UnknownType> {
        let aws = |name: &str| AWS_TYPES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        let parsed = match type_name {
            "String" => Some(ParamType::String),
            "Number" => Some(ParamType::Number),
            "List<Number>" => Some(ParamType::NumberList),
            "CommaDelimitedList" => Some(ParamType::CommaDelimitedList),
            "AWS::SSM::Parameter::Name" => Some(ParamType::SsmParameter),
            t if t.starts_with("AWS::SSM::Parameter::Value<") && t.ends_with('>') => {
                let inner = &t["AWS::SSM::Parameter::Value<".len()..t.len() - 1];
                let ok = matches!(inner, "String" | "List<String>" | "CommaDelimitedList")
                    || aws(inner).is_some()
                    || inner
                        .strip_prefix("List<")
                        .and_then(|i| i.strip_suffix('>'))
                        .and_then(aws)
                        .is_some();
                ok.then_some(ParamType::SsmParameter)
            }
            t if t.starts_with("List<") && t.ends_with('>') => {
                aws(&t["List<".len()..t.len() - 1]).map(ParamType::AwsList)
            }
            t => aws(t).map(ParamType::Aws),
        };
        parsed.ok_or_else(|| {
            let mut names: Vec<String> = [
                "String",
                "Number",
                "List<Number>",
                "CommaDelimitedList",
                "AWS::SSM::Parameter::Name",
            ]
            .iter()
            .map(|n| n.to_string())
            .collect();
            names.extend(AWS_TYPES.iter().map(|(n, _)| n.to_string()));
            names.extend(AWS_TYPES.iter().map(|(n, _)| format!("List<{n}>")));
            UnknownType {
                given: type_name.to_string(),
                suggestion: crate::problem::nearest(type_name, names.iter().map(String::as_str))
                    .map(str::to_string),
            }
        })
    }

    fn is_list(self) -> bool {
        matches!(
            self,
            ParamType::NumberList | ParamType::CommaDelimitedList | ParamType::AwsList(_)
        )
    }
}

/// A number as CloudFormation takes one: an integer or a decimal, nothing else (no exponent,
/// no `inf`).
pub fn parse_number(text: &str) -> Option<f64> {
    static NUMBER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[+-]?(\d+(\.\d*)?|\.\d+)$").expect("constant pattern"));
    if NUMBER.is_match(text) {
        text.parse().ok()
    } else {
        None
    }
}

/// CloudFormation's AllowedPattern must match the whole value.
pub fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// Every way `value` fails `spec`, as sentences; empty when CloudFormation would take it.
/// A failed constraint quotes the template's ConstraintDescription.
pub fn check_value(spec: &ParamSpec, value: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let shown = if spec.no_echo {
        "the value (NoEcho, not shown)".to_string()
    } else {
        format!("{value:?}")
    };
    let items: Vec<&str> = if spec.param_type.is_list() {
        if value.is_empty() {
            Vec::new()
        } else {
            value.split(',').collect()
        }
    } else {
        vec![value]
    };
    let item_name = |i: usize, item: &str| {
        if spec.param_type.is_list() {
            if spec.no_echo {
                format!("element {} of {shown}", i + 1)
            } else {
                format!("element {} ({item:?}) of {shown}", i + 1)
            }
        } else {
            shown.clone()
        }
    };

    // Type.
    let mut numbers = Vec::new();
    match spec.param_type {
        ParamType::String | ParamType::CommaDelimitedList => {}
        ParamType::Number | ParamType::NumberList => {
            if items.is_empty() && spec.param_type == ParamType::Number {
                failures.push(format!("{shown} is not a number"));
            }
            for (i, item) in items.iter().enumerate() {
                match parse_number(item) {
                    Some(n) => numbers.push((i, n)),
                    None => failures.push(format!("{} is not a number", item_name(i, item))),
                }
            }
        }
        ParamType::Aws(t) | ParamType::AwsList(t) => {
            for (i, item) in items.iter().enumerate() {
                if !t.accepts(item) {
                    failures.push(format!("{} is not {}", item_name(i, item), t.expected()));
                }
            }
        }
        ParamType::SsmParameter => {
            static SSM_NAME: LazyLock<Regex> = LazyLock::new(|| {
                Regex::new(r"^[A-Za-z0-9_.\-/]{1,2048}$").expect("constant pattern")
            });
            if !SSM_NAME.is_match(value) {
                failures.push(format!(
                    "{shown} is not a Systems Manager parameter name (letters, digits, _ . - /)"
                ));
            }
        }
    }
    let type_failures = failures.len();

    // Constraints.
    if let Some(allowed) = &spec.allowed_values {
        for (i, item) in items.iter().enumerate() {
            let ok = allowed.iter().any(|a| {
                a == item
                    || (matches!(spec.param_type, ParamType::Number | ParamType::NumberList)
                        && parse_number(a).is_some()
                        && parse_number(a) == parse_number(item))
            });
            if !ok {
                failures.push(format!(
                    "{} is not one of the AllowedValues: {}",
                    item_name(i, item),
                    allowed.join(", ")
                ));
            }
        }
        if items.is_empty() && !allowed.iter().any(String::is_empty) && !spec.param_type.is_list() {
            failures.push(format!(
                "{shown} is not one of the AllowedValues: {}",
                allowed.join(", ")
            ));
        }
    }
    if let Some(pattern) = &spec.allowed_pattern
        && let Ok(re) = compile_pattern(pattern)
    {
        for (i, item) in items.iter().enumerate() {
            if !re.is_match(item) {
                failures.push(format!(
                    "{} does not match AllowedPattern {pattern}",
                    item_name(i, item)
                ));
            }
        }
    }
    if !spec.param_type.is_list() && spec.param_type != ParamType::Number {
        let len = value.chars().count() as u64;
        if let Some(min) = spec.min_length
            && len < min
        {
            failures.push(format!(
                "{shown} is {len} characters long, shorter than MinLength {min}"
            ));
        }
        if let Some(max) = spec.max_length
            && len > max
        {
            failures.push(format!(
                "{shown} is {len} characters long, longer than MaxLength {max}"
            ));
        }
    }
    for &(i, n) in &numbers {
        let item = items.get(i).copied().unwrap_or_default();
        if let Some(min) = spec.min_value
            && n < min
        {
            failures.push(format!(
                "{} is less than MinValue {min}",
                item_name(i, item)
            ));
        }
        if let Some(max) = spec.max_value
            && n > max
        {
            failures.push(format!(
                "{} is more than MaxValue {max}",
                item_name(i, item)
            ));
        }
    }

    if failures.len() > type_failures
        && let Some(description) = &spec.constraint_description
    {
        for failure in &mut failures[type_failures..] {
            failure.push_str(&format!(" (ConstraintDescription: {description:?})"));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(type_name: &str) -> ParamSpec {
        ParamSpec {
            name: "P".into(),
            type_name: type_name.into(),
            param_type: ParamType::parse(type_name).expect("known type"),
            default: None,
            allowed_values: None,
            allowed_pattern: None,
            min_length: None,
            max_length: None,
            min_value: None,
            max_value: None,
            no_echo: false,
            description: None,
            constraint_description: None,
            line: 1,
        }
    }

    #[test]
    fn types_are_recognised() {
        assert_eq!(ParamType::parse("String"), Ok(ParamType::String));
        assert_eq!(ParamType::parse("List<Number>"), Ok(ParamType::NumberList));
        assert_eq!(
            ParamType::parse("List<AWS::EC2::Subnet::Id>"),
            Ok(ParamType::AwsList(AwsType::SubnetId))
        );
        assert_eq!(
            ParamType::parse("AWS::Route53::HostedZone::Id"),
            Ok(ParamType::Aws(AwsType::HostedZoneId))
        );
        assert_eq!(
            ParamType::parse("AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"),
            Ok(ParamType::SsmParameter)
        );
        let unknown = ParamType::parse("AWS::EC2::Vpc::Id").expect_err("wrong case");
        assert_eq!(unknown.suggestion.as_deref(), Some("AWS::EC2::VPC::Id"));
        assert!(ParamType::parse("AWS::SSM::Parameter::Value<Bogus>").is_err());
        assert!(ParamType::parse("Integer").is_err());
    }

    #[test]
    fn numbers() {
        let mut s = spec("Number");
        s.min_value = Some(1.0);
        s.max_value = Some(10.0);
        assert!(check_value(&s, "3").is_empty());
        assert!(check_value(&s, "2.5").is_empty());
        assert_eq!(check_value(&s, "three"), ["\"three\" is not a number"]);
        assert_eq!(check_value(&s, "1e3"), ["\"1e3\" is not a number"]);
        assert_eq!(check_value(&s, "11"), ["\"11\" is more than MaxValue 10"]);
        assert_eq!(check_value(&s, "0"), ["\"0\" is less than MinValue 1"]);
        assert_eq!(check_value(&s, ""), ["\"\" is not a number"]);

        let mut list = spec("List<Number>");
        list.max_value = Some(5.0);
        assert!(check_value(&list, "1,2,5").is_empty());
        assert_eq!(
            check_value(&list, "1,x,9"),
            [
                "element 2 (\"x\") of \"1,x,9\" is not a number",
                "element 3 (\"9\") of \"1,x,9\" is more than MaxValue 5"
            ]
        );
    }

    #[test]
    fn patterns_values_and_lengths_quote_the_constraint_description() {
        let mut s = spec("String");
        s.allowed_pattern = Some(r"(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-8])".into());
        s.constraint_description = Some("a CIDR block from /16 to /28".into());
        assert!(check_value(&s, "10.20.0.0/16").is_empty());
        // The pattern must match all of the value, not a part of it.
        assert_eq!(
            check_value(&s, "10.20.0.0/160"),
            [
                "\"10.20.0.0/160\" does not match AllowedPattern (\\d{1,3}\\.){3}\\d{1,3}/(1[6-9]|2[0-8]) (ConstraintDescription: \"a CIDR block from /16 to /28\")"
            ]
        );

        let mut env = spec("String");
        env.allowed_values = Some(vec!["staging".into(), "production".into()]);
        assert!(check_value(&env, "production").is_empty());
        assert_eq!(
            check_value(&env, "prod"),
            ["\"prod\" is not one of the AllowedValues: staging, production"]
        );

        let mut secret = spec("String");
        secret.no_echo = true;
        secret.min_length = Some(12);
        secret.max_length = Some(64);
        assert_eq!(
            check_value(&secret, "hunter2"),
            ["the value (NoEcho, not shown) is 7 characters long, shorter than MinLength 12"]
        );

        let mut zones = spec("CommaDelimitedList");
        zones.allowed_values = Some(vec!["a".into(), "b".into()]);
        assert!(check_value(&zones, "a,b,a").is_empty());
        assert_eq!(
            check_value(&zones, "a,c"),
            ["element 2 (\"c\") of \"a,c\" is not one of the AllowedValues: a, b"]
        );
    }

    #[test]
    fn aws_specific_ids() {
        let ami = spec("AWS::EC2::Image::Id");
        assert!(check_value(&ami, "ami-0123456789abcdef0").is_empty());
        assert!(check_value(&ami, "ami-12345678").is_empty());
        assert_eq!(
            check_value(&ami, "ami-XYZ"),
            ["\"ami-XYZ\" is not an AMI id: ami- and 8 or 17 hexadecimal digits"]
        );
        assert_eq!(check_value(&ami, "").len(), 1);

        let zone = spec("AWS::Route53::HostedZone::Id");
        assert!(check_value(&zone, "Z2FDTNDATAQYW2").is_empty());
        assert_eq!(check_value(&zone, "/hostedzone/Z2FDTNDATAQYW2").len(), 1);
        assert_eq!(check_value(&zone, "z2fdtndataqyw2").len(), 1);

        let subnets = spec("List<AWS::EC2::Subnet::Id>");
        assert!(check_value(&subnets, "subnet-0123456789abcdef0,subnet-12345678").is_empty());
        assert_eq!(
            check_value(&subnets, "subnet-12345678, subnet-87654321"),
            [
                "element 2 (\" subnet-87654321\") of \"subnet-12345678, subnet-87654321\" is not a subnet id: subnet- and 8 or 17 hexadecimal digits"
            ]
        );

        let vpc = spec("AWS::EC2::VPC::Id");
        assert!(check_value(&vpc, "vpc-0ca6424180d57545e").is_empty());
        assert_eq!(check_value(&vpc, "sg-0ca6424180d57545e").len(), 1);

        let az = spec("AWS::EC2::AvailabilityZone::Name");
        assert!(check_value(&az, "eu-west-1a").is_empty());
        assert!(check_value(&az, "us-gov-west-1b").is_empty());
        assert_eq!(check_value(&az, "eu-west-1").len(), 1);

        let ssm = spec("AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>");
        assert!(
            check_value(
                &ssm,
                "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
            )
            .is_empty()
        );
        assert_eq!(check_value(&ssm, "not a name").len(), 1);
    }
}
