//! `POST /servers`: the request checked as Nova checks it (microversion-dependent fields, image,
//! flavor, networks, block device mapping, quota), then the server planned and recorded.

use super::*;

/// The id at the end of a reference that may be an id or a URL (Nova accepts both).
pub(super) fn reference(v: &Value) -> Option<String> {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let id = raw.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    Some(id.to_string())
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

const GIB: u64 = 1024 * 1024 * 1024;

fn find_image<'a>(st: &'a SimState, id: &str) -> Result<&'a SimImage, Response> {
    let image = st
        .config
        .images
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| bad_request(format!("Image {id} could not be found.")))?;
    if image.status != "active" {
        return Err(bad_request(format!("Image {id} is not active.")));
    }
    Ok(image)
}

/// What a validated create request asks for.
struct Plan<'a> {
    name: String,
    flavor: &'a SimFlavor,
    image: &'a SimImage,
    boot_from_volume: bool,
    delete_volume_on_termination: bool,
    /// GB; 0 unless booting from a volume.
    volume_size: u64,
    networks: Vec<(&'a SimNetwork, Option<String>)>,
    metadata: Map<String, Value>,
}

fn validate<'a>(st: &'a SimState, mv: Mv, req: &Value) -> Result<Plan<'a>, Response> {
    let server = &req["server"];
    if !server.is_object() {
        return Err(bad_request("Invalid input for field/attribute server. 'server' is a required property"));
    }

    // Fields newer than the requested microversion are refused, as Nova's request schema for
    // that version allows no other properties (description from 2.19, tags from 2.52).
    for (field, since) in [("description", (2, 19)), ("tags", (2, 52))] {
        if server.get(field).is_some() && mv < since {
            return Err(bad_request(format!(
                "Invalid input for field/attribute server. Value: {server}. Additional properties are \
                 not allowed ('{field}' was unexpected)"
            )));
        }
    }
    match &server["description"] {
        Value::Null => {}
        Value::String(d) if d.chars().count() <= 255 && !d.chars().any(char::is_control) => {}
        other => {
            return Err(bad_request(format!(
                "Invalid input for field/attribute description. Value: {other}. {other} is not \
                 a printable string of at most 255 characters"
            )));
        }
    }
    if let Some(tags) = server.get("tags") {
        let ok = tags.as_array().is_some_and(|list| {
            list.len() <= 50
                && list.iter().all(|t| {
                    t.as_str().is_some_and(|t| (1..=60).contains(&t.chars().count()) && !t.contains(['/', ',']))
                })
        });
        if !ok {
            return Err(bad_request(format!(
                "Invalid input for field/attribute tags. Value: {tags}. At most 50 tags of 1 to 60 \
                 characters, without '/' or ','"
            )));
        }
    }

    let name = match server["name"].as_str() {
        Some(n) if !n.trim().is_empty() && n.chars().count() <= 255 => n.to_string(),
        _ => {
            return Err(bad_request(format!(
                "Invalid input for field/attribute name. Value: {}. 'name' must be a non-empty \
                 string of at most 255 characters",
                server["name"]
            )));
        }
    };

    let flavor_ref = reference(&server["flavorRef"]).unwrap_or_default();
    let flavor = st
        .config
        .flavors
        .iter()
        .find(|f| f.id == flavor_ref)
        .ok_or_else(|| bad_request("Invalid flavorRef provided."))?;

    let metadata = match &server["metadata"] {
        Value::Null => Map::new(),
        Value::Object(m) => {
            for (k, v) in m {
                if k.is_empty() || k.chars().count() > 255 || !v.is_string() {
                    return Err(bad_request(format!(
                        "Invalid input for field/attribute metadata. Value: {}. metadata keys \
                         and values must be strings of at most 255 characters",
                        server["metadata"]
                    )));
                }
            }
            m.clone()
        }
        other => {
            return Err(bad_request(format!(
                "Invalid input for field/attribute metadata. Value: {other}. {other} is not of \
                 type 'object'"
            )));
        }
    };

    // Block device mapping: the boot entry decides between image and volume boot.
    let bdms: &[Value] = match &server["block_device_mapping_v2"] {
        Value::Null => &[],
        Value::Array(list) => list,
        other => {
            return Err(bad_request(format!(
                "Invalid input for field/attribute block_device_mapping_v2. Value: {other}. \
                 {other} is not of type 'array'"
            )));
        }
    };
    let boot_bdm =
        bdms.iter().find(|b| as_u64(&b["boot_index"]) == Some(0)).or_else(|| (bdms.len() == 1).then(|| &bdms[0]));
    let image_ref = reference(&server["imageRef"]).filter(|s| !s.is_empty());

    let (image, boot_from_volume, delete_volume, volume_size) = match boot_bdm {
        Some(bdm) => {
            let source = bdm["source_type"].as_str().unwrap_or("");
            let dest = bdm["destination_type"].as_str().unwrap_or("");
            let uuid = bdm["uuid"].as_str().unwrap_or("");
            match (source, dest) {
                ("image", "volume") => {
                    let image = find_image(st, uuid)?;
                    let size = as_u64(&bdm["volume_size"]).unwrap_or(0);
                    if size == 0 {
                        return Err(bad_request(
                            "Images with destination_type 'volume' need to have a non-zero size \
                             specified",
                        ));
                    }
                    if let Some(r) = &image_ref {
                        find_image(st, r)?;
                    }
                    let delete = bdm["delete_on_termination"].as_bool().unwrap_or(false);
                    (image, true, delete, size)
                }
                ("image", "local") => {
                    let image = find_image(st, uuid)?;
                    (image, false, false, 0)
                }
                ("volume" | "snapshot", _) => {
                    return Err(bad_request(format!(
                        "{}{} {uuid} could not be found.",
                        source[..1].to_ascii_uppercase(),
                        &source[1..]
                    )));
                }
                _ => {
                    return Err(bad_request(format!(
                        "Block Device Mapping is Invalid: boot device has source_type \
                         '{source}' and destination_type '{dest}'."
                    )));
                }
            }
        }
        None => {
            let Some(r) = &image_ref else {
                return Err(bad_request("Invalid imageRef provided."));
            };
            (find_image(st, r)?, false, false, 0)
        }
    };

    if boot_from_volume {
        if volume_size < image.min_disk {
            return Err(bad_request(format!(
                "Volume is smaller than the minimum size specified in image metadata. Volume \
                 size is {} bytes, minimum size is {} bytes.",
                volume_size * GIB,
                image.min_disk * GIB
            )));
        }
    } else if flavor.disk == 0 {
        return Err(bad_request(
            "Flavor's disk is too small for requested image. Flavor disk is 0 bytes; a flavor \
             with a disk of 0 needs a block_device_mapping_v2 boot volume (source_type 'image', \
             destination_type 'volume', volume_size > 0).",
        ));
    } else if flavor.disk < image.min_disk {
        return Err(bad_request(format!(
            "Flavor's disk is too small for requested image. Flavor disk is {} bytes, minimum \
             size is {} bytes.",
            flavor.disk * GIB,
            image.min_disk * GIB
        )));
    }
    if flavor.ram < image.min_ram {
        return Err(bad_request("Flavor's memory is too small for requested image."));
    }

    let networks = match &server["networks"] {
        Value::Null if mv >= (2, 37) => {
            return Err(bad_request("Invalid input for field/attribute server. 'networks' is a required property"));
        }
        Value::Null => auto_network(st)?,
        Value::String(s) if s == "auto" && mv >= (2, 37) => auto_network(st)?,
        Value::String(s) if s == "none" && mv >= (2, 37) => Vec::new(),
        Value::Array(list) => {
            let mut out = Vec::new();
            for entry in list {
                if let Some(port) = entry["port"].as_str() {
                    return Err(bad_request(format!("Port {port} could not be found.")));
                }
                let Some(uuid) = entry["uuid"].as_str() else {
                    return Err(bad_request(format!(
                        "Bad networks format: network uuid is not in proper format ({entry})"
                    )));
                };
                let net = st
                    .config
                    .networks
                    .iter()
                    .find(|n| n.id == uuid)
                    .ok_or_else(|| bad_request(format!("Network {uuid} could not be found.")))?;
                let fixed_ip = entry["fixed_ip"].as_str().map(str::to_string);
                out.push((net, fixed_ip));
            }
            out
        }
        other => {
            return Err(bad_request(format!("Invalid input for field/attribute networks. Value: {other}.")));
        }
    };

    Ok(Plan {
        name,
        flavor,
        image,
        boot_from_volume,
        delete_volume_on_termination: delete_volume,
        volume_size,
        networks,
        metadata,
    })
}

/// Nova's choice when no network is named: the only one there is, or a 409.
fn auto_network(st: &SimState) -> Result<Vec<(&SimNetwork, Option<String>)>, Response> {
    let candidates: Vec<&SimNetwork> = st.config.networks.iter().filter(|n| !n.external).collect();
    match candidates.as_slice() {
        [only] => Ok(vec![(*only, None)]),
        [] => Err(bad_request("No valid network found.")),
        _ => {
            Err(fault(StatusCode::CONFLICT, "Multiple possible networks found, use a Network ID to be more specific."))
        }
    }
}

pub(super) fn create(st: &SimState, mv: Mv, body: &[u8]) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return bad_request("Malformed request body");
    };
    let plan = match validate(st, mv, &req) {
        Ok(plan) => plan,
        Err(resp) => return resp,
    };
    let faults = st.faults();
    if let Some(code) = faults.quota {
        let message = "Quota exceeded for instances: Requested 1, but already used 10 of 10 \
                       instances";
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
        return if status == StatusCode::PAYLOAD_TOO_LARGE {
            fault(status, message)
        } else {
            json_response(status, json!({"forbidden": {"code": status.as_u16(), "message": message}}))
        };
    }
    if let Some(code) = faults.create_status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_response(
            status,
            json!({"computeFault": {
                "code": status.as_u16(),
                "message": "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ \
                            and attach the Nova API log if possible.\n<class 'nova.exception.SimulatedFault'>"
            }}),
        );
    }

    let server = &req["server"];
    let build_delay = faults.build_delay_ms.map(Duration::from_millis).unwrap_or(st.config.build_delay);
    let created = Timestamp::now();
    let id = uuid::Uuid::new_v4().to_string();
    let admin_pass = server["adminPass"].as_str().map(str::to_string).unwrap_or_else(|| random_string(12));
    let disk_config = server["OS-DCF:diskConfig"].as_str().unwrap_or("MANUAL").to_string();
    let security_groups = match &server["security_groups"] {
        Value::Array(list) if !list.is_empty() => {
            Value::Array(list.iter().map(|g| json!({"name": g["name"].as_str().unwrap_or("default")})).collect())
        }
        _ => json!([{"name": "default"}]),
    };

    let mut servers = lock(&st.servers);
    if let Some(refused) = quota::refuse_over_quota(st.quota(), &servers, plan.flavor) {
        return refused;
    }
    let nics: Vec<Nic> = plan
        .networks
        .iter()
        .map(|(net, fixed_ip)| {
            let (addr, mac) = servers.allocate_addr();
            Nic { network: net.name.clone(), addr: fixed_ip.clone().unwrap_or(addr), mac }
        })
        .collect();
    servers.next_seq += 1;
    let record = Server {
        seq: servers.next_seq,
        id: id.clone(),
        name: plan.name,
        created,
        ready_at: (!faults.never_active).then(|| later(created, build_delay)),
        build_delay,
        error: faults.server_error.clone(),
        image_id: (!plan.boot_from_volume).then(|| plan.image.id.clone()),
        flavor: plan.flavor.clone(),
        nics,
        metadata: plan.metadata,
        request_body: req.clone(),
        boot_from_volume: plan.boot_from_volume,
        volume: plan.boot_from_volume.then(|| {
            let delete = plan.delete_volume_on_termination;
            (servers.add_boot_volume(&id, plan.volume_size, delete), delete)
        }),
        admin_pass,
        access_ipv4: server["accessIPv4"].as_str().unwrap_or("").to_string(),
        access_ipv6: server["accessIPv6"].as_str().unwrap_or("").to_string(),
        key_name: server["key_name"].clone(),
        availability_zone: server["availability_zone"].as_str().unwrap_or("nova").to_string(),
        disk_config,
        security_groups,
    };

    let mut body = samples::SERVER_CREATED.clone();
    body["id"] = json!(record.id);
    body["adminPass"] = json!(record.admin_pass);
    body["links"] = record.links(st);
    body["OS-DCF:diskConfig"] = json!(record.disk_config);
    body["security_groups"] = record.security_groups.clone();
    let location = format!("{}/compute/v2.1/{}/servers/{}", st.base, st.config.project_id, record.id);
    servers.list.push(record);
    drop(servers);

    let mut resp = json_response(StatusCode::ACCEPTED, json!({ "server": body }));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}
